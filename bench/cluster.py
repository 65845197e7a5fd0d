#!/usr/bin/env python
"""WebSocket echo and broadcast on the real single-node cluster, through the app's Service.

    e2e/node.sh exec -- .venv/bin/python bench/cluster.py          # ~3 min
    e2e/node.sh exec -- .venv/bin/python bench/cluster.py --keep   # leave the app running

Runs inside the node's network namespace (``e2e/node.sh exec``), where the Service's ClusterIP
is reached through kube-proxy's rules as a pod would reach it. Needs the chart installed (the
operator running) and the benchmark image ``channelworks/bench-ws:dev`` imported into the
node (bench/README.md, "On the real node", says how). It applies a RealtimeApp of
``bench/ws_app/cw_project`` (``/echo/`` and ``/broadcast/<group>/``, sync consumers) with two
interface pods and a standalone Redis, in a namespace of its own, and measures with 1 and with
2 worker pods:

1. echo: ``--echo-conns`` sockets each send a ~100-byte frame and wait for it, for
   ``--echo-seconds``: round trips per second, latency p50/p99;
2. broadcast: ``--bcast-sockets`` sockets in one group; one member sends a frame, time until
   every socket has it (``--bcast-repeats`` times: median and max).

CPU per operation: the pods' containers' CPU time (their cgroup's ``cpuacct.usage``, or
``cpu.stat`` on cgroup v2, read with ``kubectl exec``) over the timed part, divided by the
operations; interface, worker and Redis pods apart, and the load generator's own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets
import yaml

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _machine import LoadSampler  # noqa: E402

APP = "bench"
PORT = 8000
PAD = "x" * 80
OPEN_CONCURRENCY = 50
TIMEOUT = 600
CPU_READ = (
    "cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null"
    " || awk '/^usage_usec/ {print $2 * 1000}' /sys/fs/cgroup/cpu.stat"
)


class BenchError(RuntimeError):
    """A figure could not be measured."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [os.environ.get("KUBECTL", "kubectl"), *args],
        capture_output=True, text=True, input=stdin, timeout=TIMEOUT,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def manifest(image: str, interface_image: str) -> dict[str, Any]:
    small = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}
    return {
        "apiVersion": "channelworks.dev/v1alpha1",
        "kind": "RealtimeApp",
        "metadata": {"name": APP},
        "spec": {
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "django": {"settingsModule": "ws_app.cw_project.settings"},
            "interface": {
                "image": interface_image,
                "replicas": 2,
                "port": PORT,
                "resources": small,
            },
            "worker": {
                "replicas": 1,
                "concurrency": 16,
                "autoscaling": {"enabled": False},
                "resources": small,
            },
            "channelLayer": {
                "capacity": 10000,
                "redis": {"mode": "standalone", "storage": {"ephemeral": True}},
            },
            "monitoring": {"enabled": False},
        },
    }


def wait(what: str, check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {timeout:.0f}s")
        time.sleep(1)


def app_status(namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl("get", "rtapp", APP, "-n", namespace, "-o", "json"))
    return found.get("status") or {}


def pods(namespace: str) -> dict[str, str]:
    """Running pod name -> component."""
    listed = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    return {
        pod["metadata"]["name"]: pod["metadata"]["labels"].get("app.kubernetes.io/component", "")
        for pod in listed
        if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
    }


def cpu_seconds(namespace: str) -> dict[str, float]:
    """Component -> CPU seconds used so far by its pods' containers."""
    used: dict[str, float] = {}
    for name, component in pods(namespace).items():
        nanoseconds = float(kubectl("exec", "-n", namespace, name, "--", "sh", "-c", CPU_READ))
        used[component] = used.get(component, 0.0) + nanoseconds / 1e9
    return used


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Figure:
    name: str
    operations: int
    seconds: float
    numbers: dict[str, float]
    cpu: dict[str, float]
    client_cpu: float

    def cpu_per_op_us(self) -> str:
        parts = [f"{part} {value / self.operations * 1e6:.0f}" for part, value in
                 sorted(self.cpu.items())]  # fmt: skip
        client = self.client_cpu / self.operations * 1e6
        return ", ".join(parts) + f"; client {client:.0f}"


async def open_sockets(url: str, count: int) -> list[Any]:
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> Any:
        async with limit:
            return await websockets.connect(url, open_timeout=60, max_queue=None)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def echo(url: str, conns: int, seconds: float, meter: Meter | None = None) -> list[float]:
    sockets = await open_sockets(url, conns)
    latencies: list[float] = []
    if meter:
        await meter.start()
    stop = time.monotonic() + seconds

    async def run(socket: Any, index: int) -> None:
        seq = 0
        while time.monotonic() < stop:
            frame = f"{index}:{seq}:{PAD}"
            started = time.perf_counter()
            await socket.send(frame)
            if await asyncio.wait_for(socket.recv(), 30) != frame:
                raise BenchError("echo: another frame came back")
            latencies.append(time.perf_counter() - started)
            seq += 1

    try:
        await asyncio.gather(*(run(socket, i) for i, socket in enumerate(sockets)))
        if meter:
            await meter.stop()
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    return sorted(latencies)


async def broadcast(base: str, size: int, repeats: int, meter: Meter) -> list[float]:
    url = f"{base}/broadcast/g{secrets.token_hex(4)}/"
    sockets = await open_sockets(url, size)
    times: list[float] = []
    await meter.start()
    try:
        for round_ in range(repeats):
            text = f"round {round_} {PAD}"
            started = time.perf_counter()
            await sockets[0].send(text)

            async def heard(socket: Any, text: str = text) -> None:
                while await socket.recv() != text:
                    pass

            await asyncio.wait_for(asyncio.gather(*(heard(s) for s in sockets)), 60)
            times.append(time.perf_counter() - started)
        await meter.stop()
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    return times


class Meter:
    """CPU of the app's pods and of this process, and wall time, between start() and stop():
    the timed part only (after the sockets are open, before they close)."""

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace, self.figure = namespace, Figure(name, 1, 0.0, {}, {}, 0.0)
        self._pods: dict[str, float] = {}
        self._client = self._started = 0.0

    async def start(self) -> None:
        self._pods = await asyncio.to_thread(cpu_seconds, self.namespace)
        self._client, self._started = own_cpu(), time.perf_counter()

    async def stop(self) -> None:
        self.figure.seconds = time.perf_counter() - self._started
        self.figure.client_cpu = own_cpu() - self._client
        after = await asyncio.to_thread(cpu_seconds, self.namespace)
        self.figure.cpu = {part: after[part] - self._pods.get(part, 0.0) for part in after}


def run(args: argparse.Namespace) -> list[Figure]:
    namespace = f"bench-cluster-{secrets.token_hex(3)}"
    kubectl("create", "namespace", namespace)
    figures: list[Figure] = []
    try:
        body = yaml.safe_dump(manifest(args.image, args.interface_image))
        kubectl("apply", "-n", namespace, "-f", "-", stdin=body)
        wait("the app Ready", lambda: app_status(namespace).get("phase") == "Ready")
        service = json.loads(
            kubectl("get", "svc", f"{APP}-interface", "-n", namespace, "-o", "json")
        )
        base = f"ws://{service['spec']['clusterIP']}:{PORT}"
        for workers in (1, 2):
            patch = json.dumps({"spec": {"worker": {"replicas": workers}}})
            kubectl("patch", "rtapp", APP, "-n", namespace, "--type=merge", "-p", patch)
            wait(f"{workers} workers ready",
                 lambda w=workers: list(pods(namespace).values()).count("worker") == w
                 and app_status(namespace).get("worker", {}).get("readyReplicas") == w)  # fmt: skip
            log(f"{workers} worker pod(s): echo")
            asyncio.run(echo(f"{base}/echo/", args.echo_conns, 1.0))  # warm-up
            meter = Meter(namespace, f"echo {args.echo_conns} conns, {workers} worker(s)")
            latencies = asyncio.run(
                echo(f"{base}/echo/", args.echo_conns, args.echo_seconds, meter)
            )
            if not latencies:
                raise BenchError("echo: no round trip")
            fig = meter.figure
            fig.operations = len(latencies)
            fig.numbers = {
                "round trips/s": len(latencies) / fig.seconds,
                "p50 ms": latencies[len(latencies) // 2] * 1e3,
                "p99 ms": latencies[int(len(latencies) * 0.99)] * 1e3,
            }
            figures.append(fig)
            log(f"{workers} worker pod(s): broadcast to {args.bcast_sockets}")
            meter = Meter(namespace, f"broadcast to {args.bcast_sockets}, {workers} worker(s)")
            times = asyncio.run(broadcast(base, args.bcast_sockets, args.bcast_repeats, meter))
            fig = meter.figure
            fig.operations = len(times)
            fig.numbers = {"median ms": statistics.median(times) * 1e3, "max ms": max(times) * 1e3}
            figures.append(fig)
    finally:
        if not args.keep:
            kubectl("delete", "namespace", namespace, "--wait=false")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="channelworks/bench-ws:dev")
    parser.add_argument("--interface-image", default="channelworks/interface:dev")
    parser.add_argument("--echo-conns", type=int, default=100)
    parser.add_argument("--echo-seconds", type=float, default=10.0)
    parser.add_argument("--bcast-sockets", type=int, default=1000)
    parser.add_argument("--bcast-repeats", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the namespace and app")
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20_000), hard))
    sampler = LoadSampler()
    figures = run(args)
    load = sampler.stop()
    print(f"bench/cluster.py on the real node (2 interface pods, standalone Redis); load {load}")
    print(f"{'figure':<40} {'result':<48} CPU per operation (µs)")
    for fig in figures:
        result = ", ".join(f"{key} {value:.1f}" for key, value in fig.numbers.items())
        print(f"{fig.name:<40} {result:<48} {fig.cpu_per_op_us()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
