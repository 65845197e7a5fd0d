"""The chat example's fixed development ``SECRET_KEY`` is only used with ``DJANGO_DEBUG`` on.

Without DEBUG and without ``DJANGO_SECRET_KEY`` a worker running the example must not start with a
key anyone can read in the repository (it signs the session cookies: whoever knows it can log in
as anyone). It refuses with one clear line, and the exit code of a configuration error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.dataplane import processes
from tests.support.eventually import eventually

EXIT_CONFIG = 2  # channelworks-worker's exit code for a configuration error (docs/worker.md)


def _worker(tmp_path: Path, **env: str) -> processes.Worker:
    return processes.Worker(
        "worker",
        processes.clean_env(
            DJANGO_SETTINGS_MODULE=processes.CHAT.settings,
            CHANNELWORKS_APP="chat",
            CHANNELWORKS_REDIS_MODE="memory",
            CHANNELWORKS_STATE_DIR=str(tmp_path / "state"),
            CHANNELWORKS_LOG_FORMAT="text",
            PYTHONPATH=os.pathsep.join([str(processes.CHAT.folder), str(processes.REPO)]),
            **env,
        ),
        tmp_path,
        processes.CHAT.folder,
    )


def test_without_debug_and_without_a_secret_key_the_worker_refuses_to_start(
    tmp_path: Path,
) -> None:
    worker = _worker(tmp_path, DJANGO_DEBUG="false")
    code = processes.wait_for_exit(worker, timeout=60)
    log = worker.log()
    assert code == EXIT_CONFIG, log
    assert "DJANGO_SECRET_KEY is not set" in log, log
    assert "DJANGO_DEBUG=true" in log, "the message says how the fallback is allowed"
    assert "Traceback" not in log, log


@pytest.mark.parametrize(
    "env",
    [{"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "a-key-of-its-own"}, {"DJANGO_DEBUG": "true"}],
    ids=["no-debug-with-a-key", "debug-without-a-key"],
)
def test_with_a_key_or_with_debug_the_worker_starts(tmp_path: Path, env: dict[str, str]) -> None:
    worker = _worker(tmp_path, **env)
    try:
        eventually(worker.ready, timeout=processes.READY_SECONDS, interval=0.2)
    finally:
        worker.stop()
