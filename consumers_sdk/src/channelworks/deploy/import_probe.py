"""Run in a child process by :mod:`channelworks.deploy.checking`: import a project as a worker
would, and write what happened to a JSON file.

    python -m channelworks.deploy.import_probe RESULT_FILE PROJECT_DIR SETTINGS [ROUTING]

The project folder goes first on ``sys.path`` and ``DJANGO_SETTINGS_MODULE`` is set; then the
settings are imported, Django is set up, the routing is loaded (which imports the consumers) and
``ROOT_URLCONF`` is imported. The result file holds ``{"ok": true, "routing": ..., "channels":
[...]}`` or ``{"ok": false, "stage": ..., "error": ...}``; a file, not stdout, so that a project
that prints while importing cannot garble it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class ProbeFailure(Exception):
    def __init__(self, stage: str, error: str) -> None:
        super().__init__(error)
        self.stage = stage
        self.error = error


def where(error: BaseException, project_dir: str) -> str:
    """`` (at chat/routing.py:12)``: the last line of the project's own code in the traceback."""
    found = ""
    current: BaseException | None = error
    while current is not None:
        for frame in traceback.extract_tb(current.__traceback__):
            path = Path(frame.filename)
            if path.is_relative_to(project_dir):
                found = f" (at {path.relative_to(project_dir)}:{frame.lineno})"
        current = current.__cause__
    return found


def describe(error: BaseException, project_dir: str) -> str:
    return f"{type(error).__name__}: {error}{where(error, project_dir)}"


def missing_module(error: BaseException, dotted: str) -> bool:
    """Whether ``error`` says that ``dotted`` itself (or a package of it) does not exist."""
    name = getattr(error, "name", None)
    parts = dotted.split(".")
    prefixes = {".".join(parts[: index + 1]) for index in range(len(parts))}
    return isinstance(error, ModuleNotFoundError) and name in prefixes


def import_settings(project_dir: str, settings_module: str) -> None:
    try:
        module = importlib.import_module(settings_module)
    except BaseException as error:
        if missing_module(error, settings_module):
            raise ProbeFailure(
                "settings",
                f"settings module {settings_module!r} not found in {project_dir} (the project "
                "folder is first on sys.path: is the name right, and is its package there with "
                "an __init__.py?)",
            ) from None
        raise ProbeFailure(
            "settings",
            f"settings module {settings_module!r} does not import: {describe(error, project_dir)}",
        ) from None
    if not hasattr(module, "INSTALLED_APPS"):
        raise ProbeFailure(
            "settings",
            f"{settings_module} does not look like Django settings: it sets no INSTALLED_APPS "
            "(is --settings, DJANGO_SETTINGS_MODULE or manage.py's default right?)",
        )


def setup_django(project_dir: str, settings_module: str) -> None:
    try:
        import django

        django.setup()
    except BaseException as error:
        raise ProbeFailure(
            "django",
            f"Django does not start with {settings_module}: {describe(error, project_dir)}",
        ) from None


def load_routing(project_dir: str, settings_module: str, given: str | None) -> dict[str, Any]:
    from channelworks import conf, routing

    configured = given if given is not None else conf.routing_setting()
    if configured is None:
        raise ProbeFailure(
            "routing",
            f"{settings_module} names no routing: set CHANNELWORKS = "
            '{"ROUTING": "<package>.routing.channel_routing"} in it, or pass --routing',
        )
    name = configured if isinstance(configured, str) else f"(a list in {settings_module})"
    try:
        router = routing.Router(configured)
    except BaseException as error:
        raise ProbeFailure(
            "routing", f"the routing {name} does not load: {describe(error, project_dir)}"
        ) from None
    return {"routing": name, "channels": sorted(router.channels)}


def import_urls(project_dir: str) -> None:
    from django.conf import settings

    urlconf = getattr(settings, "ROOT_URLCONF", None)
    if not urlconf:
        return
    try:
        importlib.import_module(urlconf)
    except BaseException as error:
        raise ProbeFailure(
            "urls", f"ROOT_URLCONF {urlconf!r} does not import: {describe(error, project_dir)}"
        ) from None


def probe(project_dir: str, settings_module: str, routing: str | None) -> dict[str, Any]:
    sys.path.insert(0, project_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    try:
        import_settings(project_dir, settings_module)
        setup_django(project_dir, settings_module)
        found = load_routing(project_dir, settings_module, routing)
        import_urls(project_dir)
    except ProbeFailure as failure:
        return {"ok": False, "stage": failure.stage, "error": failure.error}
    return {"ok": True, **found}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return EXIT_USAGE
    result_file, project_dir, settings_module = args[:3]
    result = probe(project_dir, settings_module, args[3] if len(args) == 4 else None)
    Path(result_file).write_text(json.dumps(result), encoding="utf-8")
    return EXIT_OK if result["ok"] else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
