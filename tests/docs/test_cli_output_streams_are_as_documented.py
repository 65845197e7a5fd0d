"""docs/cli.md says where the command writes: the result on stdout and messages on stderr; for
``dev``, its own lines on stdout once it runs (like ``runserver``), the logs of its processes on
stderr, and what stops it before it starts (a wrong option, missing runtimes) on stderr. Checked
with the real command, stdout and stderr captured apart."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.cli import cli
from tests.dataplane import processes
from tests.support.eventually import eventually

PAGE = processes.REPO / "docs" / "cli.md"
DOCUMENTED = (
    "`dev` is the exception: once it runs, like `manage.py runserver`, it prints its own lines "
    "(`channelworks dev: serving at ...`) on stdout; the logs of its processes go to stderr, and "
    "so does what stops it before it starts (a wrong option, missing runtimes)."
)


def test_the_page_says_what_this_test_checks() -> None:
    assert DOCUMENTED in " ".join(PAGE.read_text().split())


def test_init_prints_its_result_on_stdout_and_its_messages_on_stderr(tmp_path: Path) -> None:
    done = cli.run("init", "streams", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout == f"{tmp_path / 'streams'}\n"
    assert "created streams in" in done.stderr and "next: cd" in done.stderr


def test_dev_prints_its_lines_on_stdout_and_its_processes_logs_on_stderr(tmp_path: Path) -> None:
    project = cli.init(tmp_path, "streams")
    wrong = cli.run("dev", "--port", "70000", cwd=project)
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert "channelworks dev: --port must be a TCP port" in wrong.stderr

    out, err = tmp_path / "stdout", tmp_path / "stderr"
    port = str(processes.free_port())
    with out.open("wb") as stdout, err.open("wb") as stderr:
        dev = subprocess.Popen(
            [cli.COMMAND, "dev", "--port", port, "--no-reload"],
            cwd=project,
            env=cli.clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            eventually(lambda: "serving at" in out.read_text(), timeout=90, interval=0.2)
            # A log line of the server process: the unapplied-migrations warning, at start.
            eventually(lambda: "unapplied migrations" in err.read_text(), timeout=30)
        finally:
            dev.send_signal(signal.SIGINT)
            dev.wait(60)
    printed, logged = out.read_text(), err.read_text()
    assert all(line.startswith("channelworks dev: ") for line in printed.splitlines()), printed
    assert f"channelworks dev: serving at http://127.0.0.1:{port}/" in printed
    assert "WARNING" in logged and "WARNING" not in printed
