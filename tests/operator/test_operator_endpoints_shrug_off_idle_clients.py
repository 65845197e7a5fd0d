"""Idle or slow clients on the operator's health and metrics ports cannot pile up or keep the
probes from answering: the probe server runs on the event loop (no thread per connection),
caps the connections it keeps open per port (more are closed at once), and answers a client
that sends no request within the read timeout with 400 and closes it."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from channelworks.process import probes
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
        # No thread per connection (a few may start for the operator's own work, at most the
        # default executor's handful).
        assert threads(pid) <= before + 8, threads(pid)

        def healthy() -> bool:
            url = f"http://127.0.0.1:{operator.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        # The connections over the cap were closed at once, the others after the read timeout.
        eventually(
            healthy,
            timeout=probes.READ_TIMEOUT_SECONDS + 5,
            interval=0.2,
            retry_on=(AssertionError, OSError),
        )
        # The metrics port alike (its idle clients came a moment later, so they go later).
        eventually(
            lambda: operator.metric("channelworks_operator_leader") is not None,
            timeout=probes.READ_TIMEOUT_SECONDS + 5,
            interval=0.2,
        )
        for sock in idle:
            sock.settimeout(probes.READ_TIMEOUT_SECONDS + 5)
            answer = sock.recv(64)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer
    finally:
        for sock in idle:
            sock.close()
    assert threads(pid) <= before + 8
