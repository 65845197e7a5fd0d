"""A reproducible build context for a project's worker image, written to a folder::

    <context>/Dockerfile            the generated Dockerfile
    <context>/requirements.txt      the project's requirements (their own layer)
    <context>/app/...               the project's files, less what is excluded

The same project gives the same bytes: files are visited in sorted order, every file and folder
gets the same modification time (``SOURCE_DATE_EPOCH``, else 1980-01-01) and a normalised mode
(0644, or 0755 when the owner could execute it), and :func:`digest` sums paths, modes and
contents. Version-control folders, virtualenvs, caches, ``.env`` files, sqlite databases and the
patterns of the project's ``.dockerignore`` are left out.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from channelworks.deploy import dockerfile
from channelworks.exceptions import ProjectError

DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip (and a wheel) holds
MARKER = ".channelworks-context"
MARKER_TEXT = "Written by `channelworks build`; this folder is replaced on every build.\n"
IGNORE_FILE = ".dockerignore"
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git", ".hg", ".svn", ".channelworks", MARKER,
    ".venv", "venv", "__pycache__", "*.pyc", "*.pyo", "*.egg-info", "node_modules",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".coverage", "htmlcov",
    ".env", ".env.*", ".state", "*.sqlite3", ".DS_Store", ".idea", ".vscode",
)  # fmt: skip


@dataclass(frozen=True)
class Context:
    """A written build context: where, what it holds, and its digest."""

    folder: Path
    files: tuple[str, ...]  # posix paths relative to the folder, sorted
    digest: str  # "sha256:<hex>"

    @property
    def dockerfile(self) -> Path:
        return self.folder / "Dockerfile"


def read_ignore_patterns(project_folder: Path) -> tuple[str, ...]:
    """The patterns of the project's ``.dockerignore`` (``!`` exceptions are not supported)."""
    path = project_folder / IGNORE_FILE
    if not path.is_file():
        return ()
    patterns = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise ProjectError(
                f"{path}:{number}: exception patterns ({line}) are not supported by channelworks "
                "build; list only what to leave out"
            )
        patterns.append(line.strip("/").removeprefix("./"))
    return tuple(patterns)


def excluded(relative: PurePosixPath, patterns: Iterable[str]) -> bool:
    """Whether a path (relative to the project) matches a pattern: a pattern with a ``/``
    matches the whole path (or a folder above it), one without matches any single name."""
    for pattern in patterns:
        if "/" in pattern:
            candidates = [str(relative), *(str(parent) for parent in relative.parents)]
            if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in relative.parts):
            return True
    return False


def project_files(folder: Path, patterns: Sequence[str], skip: Sequence[Path] = ()) -> list[Path]:
    """The files of the project to ship, relative to ``folder``, sorted. Symbolic links to files
    are shipped as files; links to folders are not followed."""
    found: list[Path] = []
    skipped = {path.resolve() for path in skip}
    for root, folders, files in os.walk(folder):
        here = Path(root)
        folders[:] = sorted(
            name
            for name in folders
            if (here / name).resolve() not in skipped
            and not (here / name).is_symlink()
            and not excluded(PurePosixPath((here / name).relative_to(folder).as_posix()), patterns)
        )
        for name in sorted(files):
            relative = (here / name).relative_to(folder)
            if excluded(PurePosixPath(relative.as_posix()), patterns):
                continue
            if (here / name).is_file():  # skips broken links, sockets, fifos
                found.append(relative)
    return sorted(found, key=lambda path: path.as_posix())


def _normal_mode(source: Path) -> int:
    return 0o755 if source.stat().st_mode & stat.S_IXUSR else 0o644


def _entries(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*"), key=lambda item: item.relative_to(folder).as_posix()):
        yield path.relative_to(folder).as_posix(), path


def digest(folder: Path) -> str:
    """``sha256:<hex>`` of every path, mode and file content under ``folder``, in sorted order."""
    total = hashlib.sha256()
    for name, path in _entries(folder):
        mode = stat.S_IMODE(path.lstat().st_mode)
        kind = "d" if path.is_dir() else "f"
        total.update(f"{kind} {mode:o} {name}\n".encode())
        if kind == "f":
            total.update(hashlib.sha256(path.read_bytes()).digest())
    return f"sha256:{total.hexdigest()}"


def _prepare(destination: Path) -> None:
    """Make ``destination`` an empty folder, refusing to empty one this module did not write."""
    if destination.exists():
        if not destination.is_dir():
            raise ProjectError(f"--context {destination} exists and is not a folder")
        if any(destination.iterdir()) and not (destination / MARKER).is_file():
            raise ProjectError(
                f"--context {destination} is not empty and was not written by channelworks "
                "build: choose a new or empty folder (it is emptied on every build)"
            )
        shutil.rmtree(destination)
    destination.mkdir(parents=True)


def _fix_times(folder: Path, epoch: int) -> None:
    for _, path in sorted(_entries(folder), reverse=True):  # files before their folders
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    os.utime(folder, (epoch, epoch))


def write(
    *,
    project_folder: Path,
    requirements: Path,
    dockerfile_text: str,
    destination: Path,
    epoch: int = DEFAULT_EPOCH,
) -> Context:
    """Write the context of ``project_folder`` into ``destination`` (emptied first)."""
    destination = destination.resolve()
    patterns = (*DEFAULT_EXCLUDES, *read_ignore_patterns(project_folder))
    files = project_files(project_folder, patterns, skip=[destination])
    _prepare(destination)
    (destination / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    (destination / "Dockerfile").write_text(dockerfile_text, encoding="utf-8")
    shutil.copyfile(requirements, destination / dockerfile.CONTEXT_REQUIREMENTS)
    app = destination / dockerfile.CONTEXT_APP_DIR
    app.mkdir()
    for relative in files:
        source, target = project_folder / relative, app / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(_normal_mode(source))
    for name in (MARKER, "Dockerfile", dockerfile.CONTEXT_REQUIREMENTS):
        (destination / name).chmod(0o644)
    for path in [destination, *destination.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    _fix_times(destination, epoch)
    names = tuple(name for name, path in _entries(destination) if path.is_file())
    return Context(folder=destination, files=names, digest=digest(destination))
