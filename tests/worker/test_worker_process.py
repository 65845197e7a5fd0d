"""The ``channelworks-worker`` command as a real process: probes, metrics, SIGTERM, bad config."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).with_name("channelworks-worker")


def fetch(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(port, path, status, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fetch(port, path)[0] == status:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} did not answer {status} within {timeout}s")


def worker_env(port, **extra):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CHANNELWORKS_", "DJANGO_"))
    }
    env.update(
        CHANNELWORKS_APP="test.worker",
        CHANNELWORKS_REDIS_MODE="memory",
        DJANGO_SETTINGS_MODULE="tests.sdk.project.settings",
        CHANNELWORKS_METRICS_HOST="127.0.0.1",
        CHANNELWORKS_METRICS_PORT=str(port),
        CHANNELWORKS_TEST_DB=os.environ["CHANNELWORKS_TEST_DB"],
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        **extra,
    )
    return env


@pytest.mark.skipif(not COMMAND.exists(), reason="channelworks-worker is not installed")
def test_worker_serves_probes_and_metrics_and_drains_on_sigterm():
    port = free_port()
    process = subprocess.Popen(
        [str(COMMAND)], env=worker_env(port), stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(port, "/readyz", 200)
        assert fetch(port, "/healthz") == (200, "ok\n")
        status, body = fetch(port, "/metrics")
        assert status == 200
        assert 'channelworks_build_info{component="worker"' in body
        assert "channelworks_worker_concurrency 16.0" in body
        assert "channelworks_layer_channel_full_total 0.0" in body
        assert fetch(port, "/nothing")[0] == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = [json.loads(line) for line in process.stderr.read().splitlines() if line.strip()]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("taking messages on") for m in messages)
    assert any(m.startswith("stopping") for m in messages)
    assert messages[-1] == "worker stopped"
    assert {"time", "level", "logger", "message"} <= set(lines[0])


@pytest.mark.skipif(not COMMAND.exists(), reason="channelworks-worker is not installed")
def test_a_configuration_error_exits_2_with_the_reason():
    env = worker_env(free_port())
    del env["CHANNELWORKS_APP"]
    result = subprocess.run([str(COMMAND)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "CHANNELWORKS_APP is required" in result.stderr


@pytest.mark.skipif(not COMMAND.exists(), reason="channelworks-worker is not installed")
def test_a_routing_that_cannot_be_imported_exits_2():
    env = worker_env(free_port(), CHANNELWORKS_ROUTING="nowhere.routing")
    result = subprocess.run([str(COMMAND)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "cannot import routing 'nowhere.routing'" in result.stderr
