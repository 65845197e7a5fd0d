"""``channelworks`` refuses bad options at once, with a message naming what is wrong; ``dev`` on
a project that does not load says why (in one line for a configuration, routing or import error,
with the error's type and traceback for anything else) and exits with 2."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.dataplane import devmode, processes

COMMAND = str(processes.BIN / "channelworks")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        cwd=cwd,
        env=processes.clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_a_subcommand_it_lists_the_subcommands() -> None:
    done = run()
    assert done.returncode == 2
    assert "dev" in done.stderr


def test_dev_help_names_every_option() -> None:
    done = run("dev", "--help")
    assert done.returncode == 0
    for option in ("--project", "--settings", "--port", "--workers", "--redis", "--layer"):
        assert option in done.stdout
    assert "--no-reload" in done.stdout


def test_a_folder_without_a_project_is_refused(tmp_path: Path) -> None:
    missing = run("dev", "--project", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    empty = run("dev", "--project", str(tmp_path))
    assert empty.returncode == 2 and "no Django settings found" in empty.stderr


def test_conflicting_or_incomplete_layer_options_are_refused() -> None:
    both = run("dev", "--layer", "local", "--redis", "redis://127.0.0.1:6379")
    assert both.returncode == 2 and "not allowed with" in both.stderr
    project = str(processes.CHAT.folder)
    scheme = run("dev", "--project", project, "--redis", "http://127.0.0.1:6379")
    assert scheme.returncode == 2 and "is not a redis://" in scheme.stderr
    workers = run("dev", "--project", project, "--workers", "0")
    assert workers.returncode == 2 and "--workers must be at least 1" in workers.stderr


def test_a_port_in_use_is_reported_before_anything_starts() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("dev", "--project", str(processes.CHAT.folder), "--port", str(port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in done.stdout


def dev_no_reload(project: Path) -> subprocess.CompletedProcess[str]:
    port = str(processes.free_port())
    return run("dev", "--project", str(project), "--port", port, "--no-reload", cwd=project)


def prepend(project: Path, module: str, line: str) -> None:
    path = project / "echoproj" / f"{module}.py"
    path.write_text(f"{line}\n{path.read_text()}")


def test_a_project_whose_routing_does_not_import_is_one_line(tmp_path: Path) -> None:
    project = devmode.write_project(tmp_path / "project")
    prepend(project, "routing", "import a_module_nobody_wrote")

    done = dev_no_reload(project)

    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert (
        "cannot start: cannot import routing 'echoproj.routing.channel_routing': "
        "No module named 'a_module_nobody_wrote'"
    ) in said
    assert "Traceback" not in said


def test_a_broken_settings_module_shows_the_error_type_and_the_traceback(tmp_path: Path) -> None:
    project = devmode.write_project(tmp_path / "project")
    prepend(project, "settings", "raise RuntimeError('the settings module is broken')")

    done = dev_no_reload(project)

    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "cannot start: RuntimeError: the settings module is broken" in said
    assert "Traceback" in said and "settings.py" in said
