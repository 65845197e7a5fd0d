"""The chat example on a real cluster, as a user meets it: the chart installed, the app Ready,
a WebSocket round trip and a broadcast through the Service, workers scaling out under load and
back in when idle, and nothing left once it is deleted. The tests run in this order."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from e2e.cluster import RELEASE, App, Cluster, Release
from tests.dataplane.clients import JsonSocket, join, login, open_chat

INTERFACE_PORT = 8000
SCALE_TIMEOUT = 300.0
LOAD_SOCKETS = 8
OUTSTANDING = 40  # per socket: 320 waiting messages at a target of 20 per worker -> the maximum


def _status(cluster: Cluster, app: App) -> dict[str, Any]:
    status: dict[str, Any] = cluster.get("rtapp", app.name, app.namespace).get("status") or {}
    return status


def _interface_pods(cluster: Cluster, app: App) -> list[str]:
    selector = f"app.kubernetes.io/instance={app.name},app.kubernetes.io/component=interface"
    return cluster.names("pods", app.namespace, selector)


def test_the_app_is_ready_with_every_part_running(
    cluster: Cluster, release: Release, app: App
) -> None:
    assert "STATUS: deployed" in release.notes
    tested = cluster.helm("test", RELEASE, "-n", release.namespace, "--timeout", "300s")
    assert re.search(r"Phase:\s+Succeeded", tested), f"helm test: {tested}"
    status = _status(cluster, app)
    assert status["phase"] == "Ready"
    assert status["interface"]["ready"] == "2/2"
    assert status["channelLayer"]["readyNodes"] == 1
    table = cluster.kubectl("get", "rtapp", "-n", app.namespace).stdout.splitlines()
    assert table[1].split()[:3] == ["chat", "True", "2/2"]
    assert len(_interface_pods(cluster, app)) == 2


async def _round_trip_and_broadcast(base: str, ws: str, bob_ws: list[str]) -> None:
    alice_session, bob_session = await login(base, "alice"), await login(base, "bob")
    alice, hello = await open_chat(ws, alice_session)
    assert hello["hello"] == "alice" and hello["staff"] is True
    joined = await join(alice, "lobby")  # a round trip: command in, answer out
    assert joined["title"] == "Lobby"
    bobs: list[JsonSocket] = []
    try:
        for url in bob_ws:
            bob, _ = await open_chat(url, bob_session)
            await join(bob, "lobby")
            bobs.append(bob)
        text = f"hello from alice {time.time_ns()}"
        await alice.send({"command": "send", "room": "lobby", "message": text})
        for socket in [alice, *bobs]:
            said, _ = await socket.recv_until(lambda frame: frame.get("message") == text, 30)
            assert said["user"] == "alice" and said["room"] == "lobby"
    finally:
        for socket in [alice, *bobs]:
            await socket.close()


def test_a_websocket_round_trip_and_a_broadcast_through_the_service(
    cluster: Cluster, app: App
) -> None:
    """alice through the Service; bob through each interface pod in turn, so the broadcast
    crosses interface pods through the channel layer."""
    pods = _interface_pods(cluster, app)
    with cluster.port_forward(f"svc/{app.name}-interface", app.namespace, INTERFACE_PORT) as port:
        base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/chat/stream/"
        with (
            cluster.port_forward(pods[0], app.namespace, INTERFACE_PORT) as first,
            cluster.port_forward(pods[1], app.namespace, INTERFACE_PORT) as second,
        ):
            bob_ws = [f"ws://127.0.0.1:{p}/chat/stream/" for p in (first, second)]
            asyncio.run(_round_trip_and_broadcast(base, ws, bob_ws))


async def _keep_a_backlog(base: str, ws: str, enough: Callable[[], bool]) -> None:
    """LOAD_SOCKETS sockets keep OUTSTANDING chat messages each in flight (sent, not yet
    broadcast back) until ``enough()``: a steady queue for the autoscaler to see, whatever the
    workers' speed, and never near the channel capacity. Bounded by SCALE_TIMEOUT."""
    session = await login(base, "bob")
    sockets = [(await open_chat(ws, session))[0] for _ in range(LOAD_SOCKETS)]
    sent, echoed = [0] * LOAD_SOCKETS, [0] * LOAD_SOCKETS

    async def count_echoes(index: int) -> None:
        prefix = f"load {index}-"
        while True:
            frame = await sockets[index].recv(timeout=SCALE_TIMEOUT)
            if str(frame.get("message", "")).startswith(prefix):
                echoed[index] += 1

    readers: list[asyncio.Task[None]] = []
    try:
        for socket in sockets:
            await join(socket, "random")
        readers = [asyncio.create_task(count_echoes(i)) for i in range(LOAD_SOCKETS)]
        deadline = time.monotonic() + SCALE_TIMEOUT
        while not await asyncio.to_thread(enough):
            if time.monotonic() > deadline:
                pytest.fail(f"no scale-out within {SCALE_TIMEOUT:.0f}s of a steady backlog")
            for index, socket in enumerate(sockets):
                while sent[index] - echoed[index] < OUTSTANDING:
                    text = f"load {index}-{sent[index]}"
                    await socket.send({"command": "send", "room": "random", "message": text})
                    sent[index] += 1
            await asyncio.sleep(1)
    finally:
        for reader in readers:
            reader.cancel()
        for socket in sockets:
            await socket.close()


def _wait_for(
    what: str, check: Callable[[], tuple[bool, Any]], timeout: float = SCALE_TIMEOUT
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        passed, last = check()
        if passed:
            return last
        time.sleep(3)
    pytest.fail(f"{what} not within {timeout:.0f}s; last: {last}")


def test_load_scales_the_workers_out_and_idle_scales_them_back_in(
    cluster: Cluster, app: App
) -> None:
    autoscaling = app.manifest["spec"]["worker"]["autoscaling"]
    assert _status(cluster, app)["worker"]["replicas"] == autoscaling["minReplicas"]

    def scaled_out() -> bool:
        return int(_status(cluster, app).get("worker", {}).get("replicas", 0)) > 1

    with cluster.port_forward(f"svc/{app.name}-interface", app.namespace, INTERFACE_PORT) as port:
        base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/chat/stream/"
        asyncio.run(_keep_a_backlog(base, ws, scaled_out))
    worker = _status(cluster, app)["worker"]
    assert 1 < worker["desiredReplicas"] <= autoscaling["maxReplicas"], worker

    def scaled_in() -> tuple[bool, dict[str, Any]]:
        status = _status(cluster, app)
        worker = status.get("worker", {})
        back = worker.get("replicas") == autoscaling["minReplicas"] == worker.get("readyReplicas")
        return back and status.get("queueDepth") == 0, status

    # Idle: the queue drains, then scaleDownStabilizationSeconds later the workers go back in.
    _wait_for("the workers scaling back in", scaled_in)


def test_deleting_the_app_and_the_release_leaves_nothing(
    cluster: Cluster, release: Release, app: App
) -> None:
    cluster.kubectl("delete", "rtapp", app.name, "-n", app.namespace, "--wait=true", timeout=300)
    selector = f"app.kubernetes.io/instance={app.name}"
    kinds = "deployments,statefulsets,services,secrets,configmaps,pods,pdb,networkpolicies"

    def children_gone() -> tuple[bool, dict[str, Any]]:
        left = cluster.names(kinds, app.namespace, selector)
        return not left, {"left": left}

    _wait_for("the app's children being deleted", children_gone)
    cluster.helm("uninstall", RELEASE, "-n", release.namespace, "--wait", "--timeout", "300s")
    release_selector = f"app.kubernetes.io/instance={RELEASE}"
    left = cluster.names(
        "deployments,services,serviceaccounts", release.namespace, release_selector
    )
    left += cluster.names("clusterroles,clusterrolebindings", None, release_selector)
    assert not left, f"left after helm uninstall: {left}"
