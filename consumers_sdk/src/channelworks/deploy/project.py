"""Where a Django project is, which settings it runs with, and the names derived from it.

:func:`locate` checks what can be checked without importing the project (folders and files exist,
module paths are well formed); :mod:`channelworks.deploy.checking` then imports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from channelworks.deploy import manifest
from channelworks.dev import config as dev_config
from channelworks.exceptions import ConfigurationError, ProjectError

DOTTED_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_APP_NAME = 46  # the CRD's limit: the operator appends -interface, -worker, -redis-<n>
REQUIREMENTS_FILE = "requirements.txt"
WORKER_IMAGE_SUFFIX = "-worker"
DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class Project:
    """A Django project as ``channelworks build`` and ``manifest`` see it."""

    folder: Path
    settings_module: str
    requirements: Path
    routing: str | None = None  # a dotted path given on the command line; else the settings'

    @property
    def package(self) -> str:
        """The project's top-level package (``chat`` for ``chat.settings``)."""
        return self.settings_module.split(".")[0]

    @property
    def app_name(self) -> str:
        return app_name(self.settings_module)

    @property
    def default_image(self) -> str:
        return default_image(self.app_name)


def app_name(settings_module: str) -> str:
    """A RealtimeApp name from a settings module: its package, as a DNS label (``my_chat`` gives
    ``my-chat``), at most 46 characters."""
    package = settings_module.split(".")[0].lower().replace("_", "-")
    name = re.sub(r"[^a-z0-9-]+", "", package).lstrip("-0123456789")
    return name[:MAX_APP_NAME].rstrip("-") or "app"


def default_image(name: str) -> str:
    """The tag ``channelworks build`` gives a project's worker image unless told otherwise, and
    the image ``channelworks manifest`` names unless told otherwise."""
    return f"{manifest.LOCAL_REGISTRY}/{name}{WORKER_IMAGE_SUFFIX}:{DEFAULT_TAG}"


def check_dotted_path(value: str, option: str) -> str:
    """``value`` if it is a dotted Python path (``chat.routing.channel_routing``), else an error
    naming ``option``."""
    if not DOTTED_PATH.match(value):
        raise ProjectError(
            f"{option} {value!r} is not a dotted Python path (letters, digits and _ separated by "
            "dots, e.g. chat.settings)"
        )
    return value


def settings_of(
    *, folder: str | None, settings: str | None, env: Mapping[str, str], cwd: Path
) -> tuple[Path, str]:
    """The project's folder (``folder``, default ``cwd``) and its settings module:
    ``--settings``, else ``DJANGO_SETTINGS_MODULE``, else the default ``manage.py`` sets."""
    root = (cwd / (folder or ".")).expanduser().resolve()
    if not root.is_dir():
        raise ProjectError(f"--project {root}: no such folder")
    try:
        settings_module = dev_config.find_settings(root, settings, env)
    except ConfigurationError as error:
        raise ProjectError(str(error)) from None
    return root, check_dotted_path(settings_module, "--settings")


def locate(
    *,
    folder: str | None,
    settings: str | None,
    routing: str | None,
    requirements: str | None,
    env: Mapping[str, str],
    cwd: Path,
) -> Project:
    """The project in ``folder`` (default ``cwd``) with its settings (see :func:`settings_of`)
    and requirements file."""
    root, settings_module = settings_of(folder=folder, settings=settings, env=env, cwd=cwd)
    if routing is not None:
        check_dotted_path(routing, "--routing")
    requirements_path = (cwd / requirements if requirements else root / REQUIREMENTS_FILE).resolve()
    if not requirements_path.is_file():
        raise ProjectError(
            f"no requirements file at {requirements_path}: list the packages the project needs "
            f"in {REQUIREMENTS_FILE} (an empty file is fine), or pass --requirements FILE"
        )
    return Project(
        folder=root,
        settings_module=settings_module,
        requirements=requirements_path,
        routing=routing,
    )
