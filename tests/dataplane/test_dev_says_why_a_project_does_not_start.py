"""``channelworks dev`` on a project that does not load says why and exits with code 2, in one
line for a configuration, routing or import error, with the type and the traceback for anything
else the project raises (consumers_sdk/src/channelworks/dev/serving.py, ``cannot_start``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.dataplane import devmode, processes

EXIT_CONFIG = 2


def dev(project: Path) -> subprocess.CompletedProcess[str]:
    argv = devmode.channelworks_dev(project, processes.free_port(), "--no-reload")
    return subprocess.run(
        argv,
        cwd=project,
        env=processes.clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def prepend(project: Path, module: str, line: str) -> None:
    path = project / "echoproj" / f"{module}.py"
    path.write_text(f"{line}\n{path.read_text()}")


def test_an_import_error_is_one_line(tmp_path: Path) -> None:
    project = devmode.write_project(tmp_path / "project")
    prepend(project, "routing", "import a_module_nobody_wrote")

    done = dev(project)

    said = done.stdout + done.stderr
    assert done.returncode == EXIT_CONFIG, said
    assert (
        "cannot start: cannot import routing 'echoproj.routing.channel_routing': "
        "No module named 'a_module_nobody_wrote'"
    ) in said
    assert "Traceback" not in said


def test_a_broken_project_shows_the_error_type_and_the_traceback(tmp_path: Path) -> None:
    project = devmode.write_project(tmp_path / "project")
    prepend(project, "settings", "raise RuntimeError('the settings module is broken')")

    done = dev(project)

    said = done.stdout + done.stderr
    assert done.returncode == EXIT_CONFIG, said
    assert "cannot start: RuntimeError: the settings module is broken" in said
    assert "Traceback" in said and "settings.py" in said
