"""Noticing code changes: a modification-time scan of the project folder (no extra packages).

Watched: ``*.py`` and templates (``*.html``) under the project folder, less folders that hold no
code of the project (hidden ones such as ``.venv``/``.git``/``.state``, ``__pycache__``,
``node_modules``). A scan of a few thousand files takes milliseconds; it runs once a second.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

WATCHED_SUFFIXES = (".py", ".html")
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "env"})

Snapshot = dict[str, int]


def scan(roots: Iterable[Path], suffixes: tuple[str, ...] = WATCHED_SUFFIXES) -> Snapshot:
    """Modification time (ns) of every watched file under ``roots``."""
    found: Snapshot = {}
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = [
                name
                for name in subfolders
                if not name.startswith(".") and name not in SKIPPED_FOLDERS
            ]
            for name in files:
                if name.endswith(suffixes):
                    path = os.path.join(folder, name)
                    try:
                        found[path] = os.stat(path).st_mtime_ns
                    except OSError:  # removed while scanning
                        continue
    return found


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """Files added, removed or modified between two snapshots, sorted."""
    changed = {path for path in before.keys() ^ after.keys()}
    changed.update(path for path in before.keys() & after.keys() if before[path] != after[path])
    return sorted(changed)


class Watcher:
    """``changes()`` returns the files changed since the previous call (or since creation)."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self._roots = [Path(root) for root in roots]
        self._snapshot = scan(self._roots)

    def changes(self) -> list[str]:
        current = scan(self._roots)
        changed = differences(self._snapshot, current)
        self._snapshot = current
        return changed
