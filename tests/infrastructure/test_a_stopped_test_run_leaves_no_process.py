"""A test run stopped with SIGTERM (a cancelled CI job, ``kill`` of a run) leaves nothing running
(tests/support/stopping.py): a run of tests/infrastructure/a_run_to_stop.py, which holds a
redis-server, headless Chromium with a page and a process in a session of its own, is sent
SIGTERM in the middle of its test; afterwards none of the processes it had started is left.
Before, every one of them stayed (Chromium and the redis-server were found running 48 minutes
after a stopped run)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.dataplane import cdp
from tests.support.eventually import eventually

pytestmark = cdp.NEEDS_CHROMIUM
ROOT = Path(__file__).resolve().parents[2]
RUN = Path(__file__).with_name("a_run_to_stop.py")
START_SECONDS = 120.0  # pytest, a redis-server and Chromium starting on two busy cores
GONE_SECONDS = 30.0


def still_running(held: list[dict[str, Any]]) -> list[str]:
    """The processes of ``held`` that are still there (the same process, not a reused id)."""
    left = []
    for entry in held:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(entry["pid"])
            if process.create_time() == entry["created"] and (
                process.status() != psutil.STATUS_ZOMBIE
            ):
                left.append(f"{entry['pid']} {entry['name']}")
    return left


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_sigterm_to_a_run_ends_every_process_its_test_started(
    tmp_path: Path, workers: list[str]
) -> None:
    """Serial, or under pytest-xdist, where the signal reaches the controller alone and the test
    runs in a worker process."""
    pids = tmp_path / "held.json"
    env = {**os.environ, "STOPPED_RUN_PIDS": str(pids)}
    pytest_args = ["-q", "-p", "no:cacheprovider", *workers, str(RUN)]
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", *pytest_args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the signal is for that run alone
        )
    held: list[dict[str, Any]] = []
    try:

        def started() -> list[dict[str, Any]]:
            assert run.poll() is None, (tmp_path / "run.log").read_text()
            assert pids.exists()
            return list(json.loads(pids.read_text()))

        held = eventually(started, timeout=START_SECONDS, interval=0.2, message="run started")
        names = {entry["name"] for entry in held}
        assert {"redis-server", "chromium", "sleep"} <= names, names

        run.send_signal(signal.SIGTERM)  # the run's process alone, as `kill PID` does
        code = run.wait(GONE_SECONDS)

        def all_gone() -> None:
            assert still_running(held) == []

        eventually(all_gone, timeout=GONE_SECONDS, interval=0.2, message="nothing left")
        log_text = (tmp_path / "run.log").read_text()
        assert code == pytest.ExitCode.INTERRUPTED, log_text
        assert "SIGTERM: stopping the test run" in log_text
    finally:
        if run.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
        for entry in held:  # on failure, leave nothing behind either
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(entry["pid"])
                if process.create_time() == entry["created"]:
                    process.kill()
