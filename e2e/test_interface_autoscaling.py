"""Interface autoscaling on real pods (spec.interface.autoscaling, builtin): the chat app's two
interface pods hold 6 sockets; autoscaling on at 8 sockets per pod scales them in to one pod,
whose going away closes its sockets with 1012 spread over the drain window, and every client
reconnects to the pod that stays and hears what alice says; more sockets scale them out again.
The app is put back as it was (2 interface pods, autoscaling off) for the files after this one."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, WebSocketException

from e2e.chat_clients import ChatAddress, interface_pods
from e2e.cluster import App, Cluster, wait_until
from tests.dataplane.clients import JsonSocket, join, login, open_chat

pytestmark = pytest.mark.timeout(900)

FIRST_SOCKETS = 6
MORE_SOCKETS = 12  # 18 open at 8 per pod: 3 pods wanted, 2 at most
PER_POD = 8
POLL = 2
TIMEOUT = 240.0
RECONNECT_PAUSE = 0.5


@dataclass
class Client:
    session: Any
    address: ChatAddress
    socket: JsonSocket | None = None
    connects: int = 0
    closes: list[tuple[float, int | None]] = field(default_factory=list)  # (when, code)
    heard: list[str] = field(default_factory=list)

    async def connect(self, deadline: float) -> None:
        while True:
            try:
                self.socket, _ = await open_chat(self.address.ws, self.session)
                await join(self.socket, "lobby")
                self.connects += 1
                return
            except (OSError, TimeoutError, WebSocketException, AssertionError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(RECONNECT_PAUSE)

    async def run(self, deadline: float) -> None:
        await self.connect(deadline)
        while True:
            assert self.socket is not None
            try:
                frame = await self.socket.recv(timeout=TIMEOUT)
            except ConnectionClosed as closed:
                self.closes.append((time.monotonic(), closed.rcvd.code if closed.rcvd else None))
                await self.connect(deadline)
                continue
            if "message" in frame:
                self.heard.append(str(frame["message"]))


def _patch_autoscaling(cluster: Cluster, app: App, autoscaling: dict[str, Any]) -> None:
    patch = [{"op": "add", "path": "/spec/interface/autoscaling", "value": autoscaling}]
    cluster.kubectl(
        "patch", "rtapp", app.name, "-n", app.namespace, "--type", "json",
        "-p", json.dumps(patch),
    )  # fmt: skip


def _interfaces_at(cluster: Cluster, app: App, count: int) -> Any:
    def check() -> tuple[bool, Any]:
        wanted = cluster.get("deployment", f"{app.name}-interface", app.namespace)
        ready = interface_pods(cluster, app)
        return wanted["spec"]["replicas"] == count and len(ready) == count, (
            wanted["spec"]["replicas"],
            [pod["metadata"]["name"] for pod in ready],
        )

    return check


async def _scale_in_then_out(cluster: Cluster, app: App, address: ChatAddress) -> None:
    session = await login(address.base, "bob")
    deadline = time.monotonic() + TIMEOUT
    clients = [Client(session, address) for _ in range(FIRST_SOCKETS)]
    running = [asyncio.create_task(client.run(deadline)) for client in clients]
    try:
        while sum(client.connects for client in clients) < FIRST_SOCKETS:
            await asyncio.sleep(0.1)
        assert len(interface_pods(cluster, app)) == 2
        autoscaling = {
            "enabled": True,
            "minReplicas": 1,
            "maxReplicas": 2,
            "targetConnectionsPerPod": PER_POD,
            "scaleDownStabilizationSeconds": 0,
            "pollIntervalSeconds": POLL,
        }
        await asyncio.to_thread(_patch_autoscaling, cluster, app, autoscaling)
        await asyncio.to_thread(
            wait_until, "one interface pod", _interfaces_at(cluster, app, 1), TIMEOUT
        )
        # The clients of the pod that went were closed with 1012 and came back.
        moved = [client for client in clients if client.closes]
        assert moved, "no client was on the pod that went"
        while not all(client.connects == len(client.closes) + 1 for client in clients):
            for task in running:
                if task.done():
                    task.result()
            assert time.monotonic() < deadline, [(c.closes, c.connects) for c in clients]
            await asyncio.sleep(0.2)
        codes = [code for client in moved for _, code in client.closes]
        assert all(code == 1012 for code in codes), codes
        if len(moved) > 1:  # spread over the drain window, not all at once
            times = sorted(when for client in moved for when, _ in client.closes)
            assert times[-1] - times[0] >= 1.0, times
        status = cluster.get("rtapp", app.name, app.namespace)["status"]["interfaceAutoscaler"]
        assert status["desiredReplicas"] == 1, status

        # They go on: what alice says reaches every client, on the one pod left.
        alice, _ = await open_chat(address.ws, await login(address.base, "alice"))
        try:
            await join(alice, "lobby")
            await alice.send({"command": "send", "room": "lobby", "message": "after scale-in"})
            while not all("after scale-in" in client.heard for client in clients):
                assert time.monotonic() < deadline, "not every client heard alice"
                await asyncio.sleep(0.1)
        finally:
            await alice.close()

        # More sockets than one pod's target: out to the maximum again.
        more = [Client(session, address) for _ in range(MORE_SOCKETS)]
        running += [asyncio.create_task(client.run(deadline)) for client in more]
        started = time.monotonic()
        await asyncio.to_thread(
            wait_until, "two interface pods", _interfaces_at(cluster, app, 2), TIMEOUT
        )
        print(
            f"\nINTERFACE AUTOSCALING: {len(moved)} of {FIRST_SOCKETS} sockets moved with 1012 "
            f"({codes}); out to 2 pods {time.monotonic() - started:.0f}s after "
            f"{MORE_SOCKETS} more sockets"
        )
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for client in clients:
            if client.socket is not None:
                await client.socket.close()
        await asyncio.to_thread(_patch_autoscaling, cluster, app, {"enabled": False})
        await asyncio.to_thread(
            wait_until, "the app's two interface pods back", _interfaces_at(cluster, app, 2),
            TIMEOUT,
        )  # fmt: skip


def test_interfaces_scale_in_with_1012_and_out_again(cluster: Cluster, app: App) -> None:
    asyncio.run(_scale_in_then_out(cluster, app, ChatAddress.of(app)))
