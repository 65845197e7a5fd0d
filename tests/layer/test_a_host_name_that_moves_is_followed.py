"""A Redis host name that resolves to a new address after the server moved is followed.

Behind a host name (a managed Redis endpoint, a headless Service), the server can move to a new
address: the name then resolves to the new one, while the old address goes silent. The layer
must resolve the name again when it connects anew, never keep the address it first found.

Here the name is served by ``/etc/hosts``, private to the client process (a mount namespace of
its own, the file bind-mounted over ``/etc/hosts``), so the test can change what it resolves to.
The old server runs in one network namespace, the new one in another, reached on the same port
(an iptables redirect, as kube-proxy does for a Service port). At the move the file is rewritten
to the new address and the old server's port is blackholed. The client process sends itself a
message through the layer every 50 ms all along.
"""

from __future__ import annotations

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
BACK_WITHIN = 5.0  # a silent connection is dropped in about 1.5 s; then a connect and a retry


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


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing")
def test_the_layer_follows_its_host_name_to_the_new_address(
    namespace: netns.Namespace, another_namespace: netns.Namespace, tmp_path: Path
) -> None:
    with (
        redis_servers.RedisServer(host=namespace.address, launcher=namespace.launcher) as old,
        redis_servers.RedisServer(
            host=another_namespace.address, launcher=another_namespace.launcher
        ) as new,
    ):
        port = old.port
        if new.port != port:  # the new server answers on the old one's port, as a Service's
            another_namespace.run(
                "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", str(port),
                "-j", "REDIRECT", "--to-ports", str(new.port),
            )  # fmt: skip
        hosts = tmp_path / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n{old.host} {NAME}\n")
        client = subprocess.Popen(
            [
                "unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
                sys.executable, str(ROUND_TRIPS), f"redis://{NAME}:{port}/0", "moving",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path(__file__).parents[2],
        )  # fmt: skip
        try:
            output = _Lines(client)
            eventually(lambda: len(output.round_trips_since(0)) >= 20, timeout=20)
            assert "cmd=" in old.cli("CLIENT", "LIST")

            hosts.write_text(f"127.0.0.1 localhost\n{new.host} {NAME}\n")  # same file, in place
            namespace.blackhole(port)
            moved_at = time.monotonic()
            eventually(
                lambda: len(output.round_trips_since(moved_at)) >= 20,
                timeout=30,
                message="round trips through the layer after the move",
            )
            back_after = output.round_trips_since(moved_at)[0] - moved_at
            print(f"\nthe layer reached the moved server after {back_after:.2f}s")
            assert "cmd=" in new.cli("CLIENT", "LIST"), "the new server has no client"
            assert back_after <= BACK_WITHIN, f"the service was back only after {back_after:.1f}s"
        finally:
            client.kill()
            client.wait()
            if client.returncode not in (0, -9):
                print("\n".join(line for _, line in output.lines[-20:]))
