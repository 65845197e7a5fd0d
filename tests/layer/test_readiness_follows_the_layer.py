"""``/readyz`` of real worker and interface processes says whether they can work through the layer.

Issue 16, point 3: a worker that could not take work, and an interface that could not reach
Redis, stayed ready, so their Service kept sending them traffic. Here both run against a Redis
Cluster in a network namespace of the test's own; every node's port is blackholed (packets go
unanswered, as on a pod network), and each process's ``/readyz`` must:

- stay 200 for the grace period (a short failover must not empty the Service),
- turn 503 after it, while ``/healthz`` stays 200 (the process is fine: restarting it would not
  help),
- turn 200 again soon after Redis answers again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import netns, redis_servers
from tests.support.eventually import eventually
from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]
GRACE = 3.0
# A check fails once a connect (1 s) or a ping of a stalled exchange (2 s) gives up; it runs
# every 2 s; then the grace period.
NOT_READY_WITHIN = GRACE + 10.0
READY_AGAIN_WITHIN = 10.0


def _status(port: int, path: str) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
    except httpx.HTTPError:
        return 0


@contextmanager
def _process(command: str, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name(command))],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_readiness_of_worker_and_interface_follows_whether_redis_answers(
    namespace: netns.Namespace,
    namespaced_cluster: redis_servers.RedisClusterNodes,
    tmp_path: Path,
) -> None:
    common = {
        "CHANNELWORKS_APP": "ready.test",
        "CHANNELWORKS_REDIS_MODE": "cluster",
        "CHANNELWORKS_REDIS_URL": namespaced_cluster.url,
        "CHANNELWORKS_READINESS_GRACE_SECONDS": str(GRACE),
        "CHANNELWORKS_METRICS_HOST": "127.0.0.1",
        "CHANNELWORKS_LOG_FORMAT": "text",
    }
    worker_port, interface_port = free_port(), free_port()
    worker_env = {
        **common,
        "CHANNELWORKS_METRICS_PORT": str(worker_port),
        "DJANGO_SETTINGS_MODULE": "tests.sdk.project.settings",
        "CHANNELWORKS_TEST_DB": str(tmp_path / "db.sqlite3"),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    interface_env = {
        **common,
        "CHANNELWORKS_METRICS_PORT": str(interface_port),
        "PORT": str(free_port()),
        "CHANNELWORKS_INTERFACE_HOST": "127.0.0.1",
    }
    ports = {"worker": worker_port, "interface": interface_port}
    with (
        _process("channelworks-worker", worker_env, tmp_path / "worker.log") as worker,
        _process("channelworks-interface", interface_env, tmp_path / "interface.log") as interface,
    ):
        processes = {"worker": worker, "interface": interface}

        def logs() -> str:
            return "\n".join(
                f"--- {name} ---\n{(tmp_path / f'{name}.log').read_text(errors='replace')[-3000:]}"
                for name in ports
            )

        def all_say(path: str, status: int) -> bool:
            for name, process in processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"the {name} exited:\n{logs()}")
            return all(_status(port, path) == status for port in ports.values())

        eventually(lambda: all_say("/readyz", 200), timeout=60, message="both ready at first")

        silenced_at = time.monotonic()
        for _, port in namespaced_cluster.startup_nodes:
            namespace.blackhole(port)
        time.sleep(1.0)  # well inside the grace period: the probes must not have flipped yet
        assert all_say("/readyz", 200), "not ready before the grace period ended"

        eventually(
            lambda: all(_status(port, "/readyz") == 503 for port in ports.values()),
            timeout=NOT_READY_WITHIN,
            message=f"both not ready once Redis stopped answering; logs:\n{logs()}",
        )
        not_ready_after = time.monotonic() - silenced_at
        assert not_ready_after >= GRACE
        assert all_say("/healthz", 200), "liveness must not follow Redis"

        answered_at = time.monotonic()
        for _, port in namespaced_cluster.startup_nodes:
            namespace.restore(port)
        eventually(
            lambda: all_say("/readyz", 200),
            timeout=READY_AGAIN_WITHIN,
            message=f"both ready again once Redis answered; logs:\n{logs()}",
        )
        print(
            f"\nnot ready {not_ready_after:.1f}s after Redis went silent (grace {GRACE:.0f}s); "
            f"ready again {time.monotonic() - answered_at:.1f}s after it answered"
        )
