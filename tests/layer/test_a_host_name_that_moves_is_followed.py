"""A Redis host name that resolves to a new address after the server moved is followed.

Behind a host name (a managed Redis endpoint, a headless Service), the server can move to a new
address: the name then resolves to the new one, while the old address goes silent. The layer
must resolve the name again when it connects anew, never keep the address it first found. On a
cluster the name is the seed: when every node the layer knew went silent (the whole cluster
replaced), only the seed leads to the new nodes.

Here the name is served by ``/etc/hosts``, private to the client process (a mount namespace of
its own, the file bind-mounted over ``/etc/hosts``), so the test can change what it resolves to.
The old server (or cluster) runs in one network namespace, the new one in another, reached on
the same port (an iptables redirect, as kube-proxy does for a Service port). At the move the file
is rewritten to the new address and the old servers' ports are blackholed. The client process
sends itself a message through the layer every 50 ms all along.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import netns, redis_servers
from tests.support.eventually import eventually

NAME = "redis-that-moves.test"
ROUND_TRIPS = Path(__file__).with_name("round_trips.py")
# A silent connection is dropped in about 1.5 s, then a connect and a retry; a cluster's map is
# read again from the addresses it knew (1 s each to connect) before the seed.
BACK_WITHIN = {"standalone": 5.0, "cluster": 10.0}
Servers = redis_servers.RedisServer | redis_servers.RedisClusterNodes


class _Lines:
    """What the client process prints, read by a thread, with the time each line came."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    def round_trips_since(self, moment: float) -> list[float]:
        return [at for at, line in list(self.lines) if at > moment and line.startswith("ok ")]


def _servers(mode: str, namespace: netns.Namespace) -> Servers:
    if mode == "standalone":
        return redis_servers.RedisServer(host=namespace.address, launcher=namespace.launcher)
    return redis_servers.RedisClusterNodes(host=namespace.address, launcher=namespace.launcher)


def _ports(servers: Servers) -> list[int]:
    """The ports clients use, the one the name is given with first."""
    if isinstance(servers, redis_servers.RedisServer):
        return [servers.port]
    return [port for _, port in servers.startup_nodes]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_the_layer_follows_its_host_name_to_the_new_address(
    mode: str, namespace: netns.Namespace, another_namespace: netns.Namespace, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        old = stack.enter_context(_servers(mode, namespace))
        new = stack.enter_context(_servers(mode, another_namespace))
        port, new_port = _ports(old)[0], _ports(new)[0]
        if new_port != port:  # the new server answers on the old one's port, as a Service's
            another_namespace.run(
                "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", str(port),
                "-j", "REDIRECT", "--to-ports", str(new_port),
            )  # fmt: skip
        hosts = tmp_path / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n{namespace.address} {NAME}\n")
        scheme = "redis" if mode == "standalone" else "redis+cluster"
        client = subprocess.Popen(
            [
                "unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
                sys.executable, str(ROUND_TRIPS), f"{scheme}://{NAME}:{port}", "moving",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path(__file__).parents[2],
        )  # fmt: skip
        output = _Lines(client)
        try:
            eventually(lambda: len(output.round_trips_since(0)) >= 20, timeout=20)

            hosts.write_text(f"127.0.0.1 localhost\n{another_namespace.address} {NAME}\n")
            for old_port in _ports(old):  # the old servers are gone: their packets go unanswered
                namespace.blackhole(old_port)
            moved_at = time.monotonic()
            eventually(
                lambda: len(output.round_trips_since(moved_at)) >= 20,
                timeout=30,
                message="round trips through the layer after the move",
            )
            back_after = output.round_trips_since(moved_at)[0] - moved_at
            print(f"\n{mode}: the layer reached the moved server after {back_after:.2f}s")
            assert back_after <= BACK_WITHIN[mode], f"the service was back after {back_after:.1f}s"
        finally:
            client.kill()
            client.wait()
            print("\n".join(line for _, line in output.lines[-5:]))
