"""Does a project import as a worker would import it? Asked of a child process (the probe), so
that nothing of the project is imported into the command itself and a broken project cannot
take it down."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from channelworks.deploy.project import Project
from channelworks.exceptions import ProjectError

PROBE_MODULE = "channelworks.deploy.import_probe"
PROBE_TIMEOUT_SECONDS = 120.0
_OUTPUT_TAIL = 2000


@dataclass(frozen=True)
class CheckedProject:
    """What the probe found: the routing that loaded and the channels it routes."""

    routing: str
    channels: tuple[str, ...]


def check(project: Project, *, python: str, env: Mapping[str, str]) -> CheckedProject:
    """Import the settings, set Django up, load the routing and the URLconf with ``python``;
    raise :class:`ProjectError` saying what failed, and where in the project's code."""
    with tempfile.TemporaryDirectory(prefix="channelworks-check-") as scratch:
        result_file = Path(scratch) / "result.json"
        command = [python, "-m", PROBE_MODULE, str(result_file), str(project.folder)]
        command += [project.settings_module, *([project.routing] if project.routing else [])]
        try:
            done = subprocess.run(
                command,
                cwd=project.folder,
                env={**env, "DJANGO_SETTINGS_MODULE": project.settings_module},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_SECONDS,
                check=False,
            )
        except FileNotFoundError:
            raise ProjectError(f"--python {python}: no such program") from None
        except subprocess.TimeoutExpired:
            raise ProjectError(
                f"importing {project.settings_module} and its routing took more than "
                f"{PROBE_TIMEOUT_SECONDS:.0f} s (does the project connect somewhere at import?)"
            ) from None
        if not result_file.exists():
            output = (done.stderr or done.stdout).strip()[-_OUTPUT_TAIL:]
            raise ProjectError(
                f"could not check the project with {python} (exit {done.returncode}); is the "
                f"channelworks package installed for it?\n{output}"
            )
        result = json.loads(result_file.read_text(encoding="utf-8"))
    if not result["ok"]:
        error = str(result["error"])
        if "ModuleNotFoundError" in error:
            error += (
                f"\n(the check imports with {python}: install the project's requirements for it, "
                "or pass --python with the project's virtualenv Python)"
            )
        raise ProjectError(error)
    return CheckedProject(routing=str(result["routing"]), channels=tuple(result["channels"]))
