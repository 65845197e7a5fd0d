"""Redis servers for the benchmarks, and ``redis-benchmark`` as the ceiling.

The servers are the test suite's own (``tests/support/redis_servers.py``): real ``redis-server``
processes on free 127.0.0.1 ports, each in its own temporary directory, ``save ""`` and
``appendonly no``, stopped and removed on leaving the ``with`` block (or at interpreter exit)::

    with standalone() as server:            # server.url, server.port, server.flushall()
        ...
    with cluster() as nodes:                # 3 masters + 3 replicas; nodes.urls, nodes.flushall()
        ...
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.redis_servers import (  # noqa: E402
    HOST,
    RedisClusterNodes,
    RedisServer,
    RedisServerError,
)

__all__ = [
    "HOST",
    "RedisClusterNodes",
    "RedisServer",
    "RedisServerError",
    "cluster",
    "redis_benchmark",
    "redis_server_version",
    "standalone",
]


def standalone() -> RedisServer:
    """One standalone server (use it as a context manager)."""
    return RedisServer()


def cluster() -> RedisClusterNodes:
    """A six-node cluster, 3 masters + 3 replicas, formed by ``redis-cli --cluster create``."""
    return RedisClusterNodes(masters=3, replicas_per_master=1)


def redis_server_version() -> str:
    """``7.0.15`` (from ``redis-server --version``), or ``?``."""
    binary = shutil.which("redis-server")
    if binary is None:
        return "?"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return "?"


def redis_benchmark(
    port: int, tests: str = "set,lpush,lpop", requests: int = 100_000, pipeline: int = 1
) -> dict[str, float]:
    """Run ``redis-benchmark -q -t <tests> [-P n]`` on 127.0.0.1:port; requests/s per test."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise RedisServerError("redis-benchmark is not installed (apt-get install redis-tools)")
    command = [binary, "-h", HOST, "-p", str(port), "-q", "--csv", "-t", tests, "-n", str(requests)]
    if pipeline > 1:
        command += ["-P", str(pipeline)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RedisServerError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")
    rows = csv.DictReader(line for line in done.stdout.splitlines() if line.startswith('"'))
    return {row["test"]: float(row["rps"]) for row in rows}
