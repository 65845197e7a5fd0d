"""Every file path and Python module the hand-written pages name exists, so a reader who opens
what a page points at finds it: `images/worker/...py`, `builders/migrate.py` (a path inside one
of our packages), `chat/settings.py` (inside an example), `NAME/settings.py` (what `channelworks
init` writes), `channelworks.layers.redis.layer` or `channelworks.testing.Client`."""

from __future__ import annotations

import re
import subprocess
import sysconfig
from pathlib import Path

from tools.docs.markdown import ROOT

READMES = ("README.md", "e2e/README.md", "bench/README.md")
PAGES = sorted([*(ROOT / "docs").rglob("*.md"), *(ROOT / name for name in READMES)])
# `some/where/file.py`: a relative path with at least one folder, in inline code.
_PATH = re.compile(
    r"`([A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)+\.(?:py|sh|yaml|yml|md|json|js|mjs|toml|tpl))`"
)
# `channelworks.x.y`, `channelworks_worker.config`: a dotted name in one of our packages.
_MODULE = re.compile(
    r"`((?:channelworks|channelworks_interface|channelworks_worker|channelworks_operator)"
    r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+)"
)
# What `channelworks init` writes as NAME/<file> comes from these templates (<file>-tpl).
INIT_TEMPLATE = ROOT / "consumers_sdk/src/channelworks/deploy/template/project_name"
THIRD_PARTY = Path(sysconfig.get_paths()["purelib"])


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


TRACKED = _tracked_files()
SOURCES = [name for name in TRACKED if "/src/" in name]
SOURCE_TEXT = "\n".join(
    (ROOT / name).read_text(encoding="utf-8") for name in SOURCES if name.endswith(".py")
)


def _path_exists(shown: str) -> bool:
    if shown.startswith("NAME/"):
        return (INIT_TEMPLATE / (shown.removeprefix("NAME/") + "-tpl")).exists()
    if (ROOT / shown).exists() or (THIRD_PARTY / shown).exists():
        return True
    # A path shown relative to its package or example folder: some tracked file ends with it.
    return any(name.endswith("/" + shown) for name in TRACKED)


def _module_file(dotted: str) -> Path | None:
    relative = dotted.replace(".", "/")
    for name in SOURCES:
        if name.endswith(f"/src/{relative}.py") or name.endswith(f"/src/{relative}/__init__.py"):
            return ROOT / name
    return None


def _exists(dotted: str) -> bool:
    """A module, a name its parent module defines or imports (``channelworks.testing.Client``),
    or a dotted name the code uses as a string (the ``channelworks.dead_letters`` channel)."""
    if _module_file(dotted) is not None or f'"{dotted}"' in SOURCE_TEXT:
        return True
    parent, _, attribute = dotted.rpartition(".")
    source = _module_file(parent)
    return source is not None and re.search(rf"\b{attribute}\b", source.read_text()) is not None


def _names(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(ROOT)), match.group(1))
        for page in PAGES
        for match in pattern.finditer(page.read_text(encoding="utf-8"))
    ]


def test_every_file_a_page_names_exists() -> None:
    named = _names(_PATH)
    assert len(named) > 50, "the pattern no longer finds the paths the pages show"
    missing = [f"{page}: {shown}" for page, shown in named if not _path_exists(shown)]
    assert not missing, "pages name files that do not exist:\n" + "\n".join(missing)


def test_every_module_a_page_names_exists() -> None:
    named = _names(_MODULE)
    assert len(named) > 20, "the pattern no longer finds the modules the pages show"
    missing = [f"{page}: {dotted}" for page, dotted in named if not _exists(dotted)]
    assert not missing, "pages name modules that do not exist:\n" + "\n".join(missing)
