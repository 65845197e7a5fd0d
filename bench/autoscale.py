#!/usr/bin/env python
"""Autoscaler reaction: from a backlog appearing to the new worker count being written.

    .venv/bin/python bench/autoscale.py                 # polls 2 s and 15 s, 5 rounds each
    .venv/bin/python bench/autoscale.py --polls 5 --rounds 10

What runs (every part real, all on 127.0.0.1): the control plane of
``tests/support/control_plane.py`` (etcd, kube-apiserver, controller-manager, scheduler, kwok), the
CRD, one ``redis-server`` with a password, and ``python -m channelworks_operator`` as its own
process with production timings (``bench/_operator_cluster.py``). One RealtimeApp per poll
interval, on that Redis (mode external), with the builtin autoscaler: ``targetQueueDepth`` 10,
``scaleDownStabilizationSeconds`` 0, ``maxReplicas`` 8.

Each round: with 1 worker and an empty queue, send 50 messages (at a random point of the
operator's poll cycle) and time until the worker Deployment's ``spec.replicas`` reads 5 (polled
every 20 ms); then empty the queue and wait for 1 worker again. The target is at most
``pollIntervalSeconds`` + 1 s. Modes keda and hpa are not measured: they need KEDA / an external
metrics adapter and Prometheus, which this machine does not run (KEDA polls every 30 s by
default).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _operator_cluster as cluster
import _servers
from _machine import LoadSampler, load

from channelworks.layers import RedisChannelLayer
from channelworks_operator.kube import Kube

NAMESPACE = "bench-autoscale"
SECRET = "redis-password"
BACKLOG = 50
TARGET_DEPTH = 10
WANTED = BACKLOG // TARGET_DEPTH


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def replicas(kube: Kube, name: str) -> int | None:
    found = kube.get("apps/v1", "Deployment", NAMESPACE, f"{name}-worker")
    return None if found is None else int(found["spec"].get("replicas", 1))


def wait_replicas(kube: Kube, name: str, count: int, timeout: float) -> float:
    """Seconds until the worker Deployment asks for ``count`` pods (polled every 20 ms)."""
    started = time.monotonic()
    while replicas(kube, name) != count:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"autoscale.py: {name} did not reach {count} workers in {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


async def fill(url: str, password: str, prefix: str) -> None:
    layer = RedisChannelLayer(hosts=[{"address": url, "password": password}], prefix=prefix)
    try:
        for number in range(BACKLOG):
            await layer.send("websocket.receive", {"reply_channel": f"specific.b!{number}"})
    finally:
        await layer.close()


async def drain(url: str, password: str, prefix: str) -> None:
    layer = RedisChannelLayer(hosts=[{"address": url, "password": password}], prefix=prefix)
    try:
        await layer.flush()
    finally:
        await layer.close()


def manifest(name: str, url: str, poll: int) -> dict[str, Any]:
    body = cluster.app_manifest(NAMESPACE, name, url, SECRET)
    body["spec"]["worker"] = {
        "autoscaling": {
            "minReplicas": 1,
            "maxReplicas": 8,
            "targetQueueDepth": TARGET_DEPTH,
            "targetOldestAgeSeconds": 3600,
            "scaleDownStabilizationSeconds": 0,
            "pollIntervalSeconds": poll,
        }
    }
    return body


def measure(kube: Kube, url: str, password: str, poll: int, rounds: int) -> list[float]:
    name = f"poll{poll}"
    kube.apply(manifest(name, url, poll))
    wait_replicas(kube, name, 1, 120)
    prefix = f"{NAMESPACE}.{name}"
    times: list[float] = []
    for number in range(rounds):
        time.sleep(random.uniform(0, poll))  # land anywhere in the poll cycle
        started = time.monotonic()
        asyncio.run(fill(url, password, prefix))
        wait_replicas(kube, name, WANTED, poll + 60)
        taken = time.monotonic() - started  # from the first message sent
        times.append(taken)
        log(f"  poll {poll}s round {number + 1}: {taken:.2f}s")
        asyncio.run(drain(url, password, prefix))
        wait_replicas(kube, name, 1, poll + 60)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", default="2,15", help="pollIntervalSeconds to measure")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    polls = [int(item) for item in args.polls.split(",")]
    try:
        binaries = cluster.kube_binaries()
    except cluster.ControlPlaneError as error:
        log(f"autoscale.py: {error}")
        return 2
    before, sampler = load(), LoadSampler()
    password = secrets.token_hex(16)
    results: dict[int, list[float]] = {}
    logdir = Path(tempfile.mkdtemp(prefix="channelworks-bench-autoscale-"))
    with (
        cluster.ControlPlane(nodes=2, binaries=binaries) as plane,
        _servers.RedisServer(requirepass=password) as redis,
        plane.api_client() as api,
    ):
        kube = Kube(api, field_manager=cluster.FIELD_MANAGER)
        cluster.install_crd(kube)
        cluster.make_namespace(api, NAMESPACE)
        cluster.make_password_secret(kube, NAMESPACE, SECRET, password)
        url = f"redis://{_servers.HOST}:{redis.port}/0"
        operator = cluster.OperatorUnderTest(
            kubeconfig=plane.kubeconfig, namespace=NAMESPACE, identity="bench-1", log_dir=logdir
        )
        operator.start()
        try:
            operator.wait_leader(60.0)
            for poll in polls:
                log(f"poll interval {poll}s, {args.rounds} rounds")
                results[poll] = measure(kube, url, password, poll, args.rounds)
        finally:
            operator.stop()
    print(
        f"Autoscaler reaction (builtin mode): backlog of {BACKLOG} -> {WANTED} workers written; "
        f"load {before} -> {load()} (1-min samples: {sampler.stop()})"
    )
    print(f"{'poll s':>6} {'target s':>8} {'min':>6} {'median':>7} {'max':>6}  verdict  rounds")
    for poll, times in results.items():
        verdict = "PASS" if max(times) <= poll + 1 else "FAIL"
        print(
            f"{poll:>6} {poll + 1:>8} {min(times):>6.2f} {statistics.median(times):>7.2f} "
            f"{max(times):>6.2f}  {verdict:>7}  {', '.join(f'{t:.2f}' for t in times)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
