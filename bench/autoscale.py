#!/usr/bin/env python
"""Autoscaler reaction: from load appearing to the operator's answer, per mode.

    .venv/bin/python bench/autoscale.py                  # every mode, polls 2 s and 15 s, 5 rounds
    .venv/bin/python bench/autoscale.py --modes workers --polls 5 --rounds 10

What runs (every part real, all on 127.0.0.1): the control plane of
``tests/support/control_plane.py`` (etcd, kube-apiserver, controller-manager, scheduler, kwok), the
CRD, one ``redis-server`` with a password, and ``python -m channelworks_operator`` as its own
process with production timings (``bench/_operator_cluster.py``). One RealtimeApp per mode and
poll interval, on that Redis (mode external), ``scaleDownStabilizationSeconds`` 0.

Modes (each round starts at a random point of the operator's poll cycle):

* ``workers`` (builtin): send 50 messages (``targetQueueDepth`` 10) and time until the worker
  Deployment's ``spec.replicas`` reads 5; then empty the queue and wait for 1 again.
* ``interfaces`` (builtin): write interface pods' load reports into the layer as the interface
  processes do (``report_load``: 500 open WebSockets, ``targetConnectionsPerPod`` 100) and time
  until the interface Deployment reads 5; then report 0 and wait for 1. A real interface
  reports every 5 s, which a real pod adds on top.
* ``gauges`` (keda and hpa): workers in mode hpa; send 50 messages and time until the operator's
  ``/metrics`` shows ``channelworks_layer_queue_depth`` at 50 and a non-zero
  ``channelworks_layer_oldest_message_age_seconds``: the operator's part of a KEDA or HPA
  reaction. KEDA (``pollingInterval``, 30 s by default), the HPA controller (15 s sync) and the
  Prometheus scrape add theirs; none of them runs here.

The target for every mode is at most ``pollIntervalSeconds`` + 1 s (polled every 20 ms).
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
from collections.abc import Callable
from dataclasses import dataclass
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
CONNECTIONS = 500
TARGET_CONNECTIONS = 100
WANTED = 5  # BACKLOG / TARGET_DEPTH and CONNECTIONS / TARGET_CONNECTIONS
POD = "bench-interface-pod"  # the name a fake interface pod reports under


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Layer:
    url: str
    password: str

    def client(self, prefix: str) -> RedisChannelLayer:
        host = {"address": self.url, "password": self.password}
        return RedisChannelLayer(hosts=[host], prefix=prefix)

    def run(self, prefix: str, action: Callable[[RedisChannelLayer], Any]) -> None:
        async def go() -> None:
            layer = self.client(prefix)
            try:
                await action(layer)
            finally:
                await layer.close()

        asyncio.run(go())


async def fill(layer: RedisChannelLayer) -> None:
    for number in range(BACKLOG):
        await layer.send("websocket.receive", {"reply_channel": f"specific.b!{number}"})


def replicas(kube: Kube, name: str) -> int | None:
    found = kube.get("apps/v1", "Deployment", NAMESPACE, name)
    return None if found is None else int(found["spec"].get("replicas", 1))


def wait(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check()`` holds (polled every 20 ms)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"autoscale.py: {what} not reached in {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - started


def manifest(name: str, url: str, mode: str, poll: int) -> dict[str, Any]:
    body = cluster.app_manifest(NAMESPACE, name, url, SECRET)
    workers = {
        "minReplicas": 1,
        "maxReplicas": 8,
        "targetQueueDepth": TARGET_DEPTH,
        "targetOldestAgeSeconds": 3600,
        "scaleDownStabilizationSeconds": 0,
        "pollIntervalSeconds": poll,
    }
    if mode == "gauges":
        workers["mode"] = "hpa"
    body["spec"]["worker"] = {"autoscaling": workers}
    if mode == "interfaces":
        body["spec"]["worker"] = {"autoscaling": {"enabled": False}}
        body["spec"]["interface"] = {
            "autoscaling": {
                "enabled": True,
                "minReplicas": 1,
                "maxReplicas": 8,
                "targetConnectionsPerPod": TARGET_CONNECTIONS,
                "scaleDownStabilizationSeconds": 0,
                "pollIntervalSeconds": poll,
            }
        }
    return body


def one_round(
    mode: str, name: str, kube: Kube, layer: Layer, operator: cluster.OperatorUnderTest, poll: int
) -> float:
    """Load appears; seconds until the operator answers; the load goes and the app settles."""
    prefix = f"{NAMESPACE}.{name}"
    patience = poll + 60
    if mode == "workers":
        started = time.monotonic()
        layer.run(prefix, fill)
        wait(lambda: replicas(kube, f"{name}-worker") == WANTED, patience, "5 workers")
        taken = time.monotonic() - started
        layer.run(prefix, lambda client: client.flush())
        wait(lambda: replicas(kube, f"{name}-worker") == 1, patience, "1 worker")
        return taken
    if mode == "interfaces":
        started = time.monotonic()
        layer.run(prefix, lambda client: client.report_load(POD, CONNECTIONS, 120, 10.0))
        wait(lambda: replicas(kube, f"{name}-interface") == WANTED, patience, "5 interfaces")
        taken = time.monotonic() - started
        layer.run(prefix, lambda client: client.report_load(POD, 0, 120, 0.0))
        wait(lambda: replicas(kube, f"{name}-interface") == 1, patience, "1 interface")
        return taken

    def gauges(depth: int) -> bool:
        shown = operator.metric_sum("channelworks_layer_queue_depth", app=prefix)
        age = operator.metric_sum("channelworks_layer_oldest_message_age_seconds", app=prefix)
        return shown == depth and (age or 0) > 0 if depth else shown == 0

    started = time.monotonic()
    layer.run(prefix, fill)
    wait(lambda: gauges(BACKLOG), patience, "the queue gauges at 50")
    taken = time.monotonic() - started
    layer.run(prefix, lambda client: client.flush())
    wait(lambda: gauges(0), patience, "the queue gauges at 0")
    return taken


def measure(
    mode: str,
    kube: Kube,
    layer: Layer,
    operator: cluster.OperatorUnderTest,
    poll: int,
    rounds: int,
) -> list[float]:
    name = f"{mode}-{poll}"
    kube.apply(manifest(name, layer.url, mode, poll))
    settled = f"{name}-interface" if mode == "interfaces" else f"{name}-worker"
    wait(lambda: replicas(kube, settled) == 1, 120, f"{settled} at 1")
    times: list[float] = []
    for number in range(rounds):
        time.sleep(random.uniform(0, poll))  # land anywhere in the poll cycle
        taken = one_round(mode, name, kube, layer, operator, poll)
        times.append(taken)
        log(f"  {mode} poll {poll}s round {number + 1}: {taken:.2f}s")
    return times


MODES = ("workers", "interfaces", "gauges")
WHAT = {
    "workers": f"builtin, backlog of {BACKLOG} -> {WANTED} workers written",
    "interfaces": f"builtin, reports of {CONNECTIONS} sockets -> {WANTED} interface pods written",
    "gauges": f"keda/hpa, backlog of {BACKLOG} -> the operator's queue gauges show it",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES), help="of: " + ", ".join(MODES))
    parser.add_argument("--polls", default="2,15", help="pollIntervalSeconds to measure")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    modes = [item for item in args.modes.split(",") if item]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode {', '.join(unknown)}: use {', '.join(MODES)}")
    polls = [int(item) for item in args.polls.split(",")]
    try:
        binaries = cluster.kube_binaries()
    except cluster.ControlPlaneError as error:
        log(f"autoscale.py: {error}")
        return 2
    before, sampler = load(), LoadSampler()
    password = secrets.token_hex(16)
    results: dict[tuple[str, int], list[float]] = {}
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
        layer = Layer(f"redis://{_servers.HOST}:{redis.port}/0", password)
        operator = cluster.OperatorUnderTest(
            kubeconfig=plane.kubeconfig, namespace=NAMESPACE, identity="bench-1", log_dir=logdir
        )
        operator.start()
        try:
            operator.wait_leader(60.0)
            for mode in modes:
                for poll in polls:
                    log(f"{mode}: poll interval {poll}s, {args.rounds} rounds")
                    results[mode, poll] = measure(mode, kube, layer, operator, poll, args.rounds)
        finally:
            operator.stop()
    print(f"Autoscaler reaction; load {before} -> {load()} (1-min samples: {sampler.stop()})")
    print(
        f"{'mode':>10} {'poll s':>6} {'target s':>8} {'min':>6} {'median':>7} {'max':>6}  "
        "verdict  rounds"
    )
    for (mode, poll), times in results.items():
        verdict = "PASS" if max(times) <= poll + 1 else "FAIL"
        print(
            f"{mode:>10} {poll:>6} {poll + 1:>8} {min(times):>6.2f} "
            f"{statistics.median(times):>7.2f} {max(times):>6.2f}  {verdict:>7}  "
            f"{', '.join(f'{t:.2f}' for t in times)}"
        )
    for mode in modes:
        print(f"  {mode}: {WHAT[mode]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
