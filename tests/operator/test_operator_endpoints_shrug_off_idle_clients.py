"""Idle or slow clients on the operator's health and metrics ports cannot pile up threads or
keep the probes from answering: connections are capped per port, and a client that sends no
request is dropped after the read timeout."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from channelworks_operator import health
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually

IDLE_CLIENTS = 300


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_three_hundred_idle_connections_do_not_starve_the_probes(
    operators: OperatorFactory,
) -> None:
    operator = operators()
    pid = operator.pid
    before = threads(pid)
    idle = []
    for port in (operator.health_port, operator.metrics_port):
        for _ in range(IDLE_CLIENTS // 2):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    try:
        assert threads(pid) <= before + 2 * health.MAX_CONNECTIONS + 2, threads(pid)

        def healthy() -> bool:
            url = f"http://127.0.0.1:{operator.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        # The connections over the cap were closed at once, the others after the read timeout.
        eventually(
            healthy,
            timeout=health.READ_TIMEOUT_SECONDS + 5,
            interval=0.2,
            retry_on=(AssertionError, OSError),
        )
        assert operator.metric("channelworks_operator_leader") is not None
        for sock in idle:
            sock.settimeout(1)
            assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
    eventually(lambda: threads(pid) <= before + 2, timeout=health.READ_TIMEOUT_SECONDS + 10)
