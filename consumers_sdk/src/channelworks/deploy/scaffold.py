"""``channelworks init``: a new project from the template in ``template/``.

Template files end in ``-tpl`` (so no tool takes them for code of this package); the folder
``project_name`` and the placeholders ``{{ project_name }}``, ``{{ app_name }}``... are replaced
by the project's values, and ``gitignore`` becomes ``.gitignore``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import keyword
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from channelworks.deploy import project
from channelworks.exceptions import ProjectError

TEMPLATE = Path(__file__).with_name("template")
SUFFIX = "-tpl"
RENAMED = {"project_name": None, "gitignore": ".gitignore"}  # None: the project's name
EXECUTABLE = {"manage.py"}
_PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Values:
    """What the placeholders are replaced with."""

    project_name: str
    app_name: str
    sdk_version: str
    django_version: str  # major.minor the project starts on
    django_next: str  # the next minor, excluded
    secret_key: str


def check_name(name: str) -> str:
    """``name`` if it can be the project's Python package, else a :class:`ProjectError`."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ProjectError(
            f"{name!r} cannot be a project name: it becomes a Python package, so use letters, "
            "digits and _ only, not starting with a digit (e.g. my_chat)"
        )
    if importlib.util.find_spec(name) is not None:
        raise ProjectError(
            f"{name!r} is the name of an installed Python module, which the project's package "
            "would hide (or be hidden by): choose another name"
        )
    return name


def default_values(name: str) -> Values:
    """The values for a new project called ``name``, from the installed SDK and Django."""
    django = importlib.metadata.version("django").split(".")
    major, minor = int(django[0]), int(django[1])
    return Values(
        project_name=name,
        app_name=project.app_name(name),
        sdk_version=importlib.metadata.version("channelworks"),
        django_version=f"{major}.{minor}",
        django_next=f"{major}.{minor + 1}",
        secret_key=f"django-insecure-{secrets.token_urlsafe(40)}",
    )


def _target(relative: PurePosixPath, name: str) -> PurePosixPath:
    parts = []
    for part in relative.parts:
        part = part.removesuffix(SUFFIX)
        if part in RENAMED:
            part = RENAMED[part] or name
        parts.append(part)
    return PurePosixPath(*parts)


def _fill(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda found: values[found.group(1)], text)


def render(values: Values) -> dict[PurePosixPath, str]:
    """Every file of the new project: its path in the project folder and its text."""
    fields = {key: str(value) for key, value in asdict(values).items()}
    files = {}
    for source in sorted(TEMPLATE.rglob(f"*{SUFFIX}")):
        relative = PurePosixPath(source.relative_to(TEMPLATE).as_posix())
        files[_target(relative, values.project_name)] = _fill(
            source.read_text(encoding="utf-8"), fields
        )
    return files


def write(destination: Path, files: Mapping[PurePosixPath, str]) -> None:
    """Write ``files`` into ``destination``, which must be new or empty."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ProjectError(
            f"{destination} already exists and is not an empty folder: choose another name or "
            "--directory"
        )
    for relative, text in files.items():
        path = destination / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755 if relative.name in EXECUTABLE else 0o644)
