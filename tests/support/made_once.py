"""Something a session fixture makes once per run, also under pytest-xdist.

Each xdist worker sets up session fixtures on its own; for a costly thing that every worker can
share (a folder of files), the first worker to ask makes it in the run's shared temporary folder
(the parent of every worker's own), under a lock, and the others wait for it and use it.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path

import pytest


def made_once(
    config: pytest.Config,
    factory: pytest.TempPathFactory,
    name: str,
    make: Callable[[Path], None],
) -> Path:
    """The folder ``name`` that ``make`` fills, made by the first worker of the run that asks."""
    base = factory.getbasetemp()
    shared = base.parent if hasattr(config, "workerinput") else base  # an xdist worker's parent
    folder = shared / name
    complete = shared / f"{name}.complete"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
        if not complete.exists():
            folder.mkdir(exist_ok=True)
            make(folder)
            complete.touch()
    return folder
