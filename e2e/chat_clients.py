"""How the e2e tests reach the chat app: as a client in the cluster's network would, through the
interface Service's cluster DNS name (kube-proxy picks a pod per connection), and each interface
pod's metrics port by pod IP, to see which pod holds how many sockets.

The browser-like clients themselves (log in with the form, a JSON WebSocket) are the data-plane
tests' (tests/dataplane/clients.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, WebSocketException

from e2e.cluster import App, Cluster
from tests.dataplane.clients import JsonSocket, join, open_chat
from tests.dataplane.processes import metric

INTERFACE_PORT = 8000
METRICS_PORT = 9100


@dataclass(frozen=True)
class ChatAddress:
    """The app's interface Service by name: ``http://<app>-interface.<ns>.svc.cluster.local``."""

    host: str
    port: int = INTERFACE_PORT

    @classmethod
    def of(cls, app: App) -> ChatAddress:
        return cls(f"{app.name}-interface.{app.namespace}.svc.cluster.local")

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{self.host}:{self.port}/chat/stream/"


def interface_pods(cluster: Cluster, app: App) -> list[dict[str, Any]]:
    """The app's interface pods that are Ready and not being deleted."""
    selector = f"app.kubernetes.io/instance={app.name},app.kubernetes.io/component=interface"
    ready = []
    for pod in cluster.items("pods", app.namespace, selector):
        conditions = pod.get("status", {}).get("conditions") or []
        if pod["metadata"].get("deletionTimestamp") is None and any(
            c["type"] == "Ready" and c["status"] == "True" for c in conditions
        ):
            ready.append(pod)
    return ready


async def open_connections(pod_ip: str) -> int:
    """``channelworks_interface_connections`` of one interface pod: its open WebSockets."""
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(f"http://{pod_ip}:{METRICS_PORT}/metrics")
    page.raise_for_status()
    return int(metric(page.text, "channelworks_interface_connections"))


async def one_socket_on_each_pod(
    address: ChatAddress, session: str, pod_ips: list[str], attempts: int = 40
) -> dict[str, JsonSocket]:
    """Open sockets through the Service, one at a time, until one is held by each pod (seen by
    which pod's connection count went up); the spare ones are closed at the end (they join no
    room, so nothing is sent to them). Nothing else may open or close sockets of this app
    meanwhile."""
    kept: dict[str, JsonSocket] = {}
    spare: list[JsonSocket] = []
    counts = {ip: await open_connections(ip) for ip in pod_ips}
    try:
        for _ in range(attempts):
            socket, _hello = await open_chat(address.ws, session)
            now = {ip: await open_connections(ip) for ip in pod_ips}
            landed = [ip for ip in pod_ips if now[ip] > counts[ip]]
            assert len(landed) == 1, f"connection counts went from {counts} to {now}"
            counts = now
            if landed[0] in kept:
                spare.append(socket)
            else:
                kept[landed[0]] = socket
            if len(kept) == len(pod_ips):
                return kept
        await asyncio.gather(*(socket.close() for socket in kept.values()))
        raise AssertionError(f"{attempts} sockets through the Service all landed on {list(kept)}")
    finally:
        await asyncio.gather(*(socket.close() for socket in spare))


RECONNECT_PAUSE = 0.5


@dataclass
class ReconnectingClient:
    """A chat client in the lobby that reconnects whenever its socket closes, as the page does;
    it keeps each close's code and time and what it heard."""

    session: str
    address: ChatAddress
    recv_timeout: float
    socket: JsonSocket | None = None
    closes: list[int | None] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)  # monotonic, one per close
    connects: int = 0
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
                frame = await self.socket.recv(timeout=self.recv_timeout)
            except ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
                self.closed_at.append(time.monotonic())
                await self.connect(deadline)
                continue
            if "message" in frame:
                self.heard.append(str(frame["message"]))

    @property
    def back(self) -> bool:
        """Connected again after every close."""
        return self.connects == len(self.closes) + 1


async def stop_clients(
    clients: list[ReconnectingClient], running: list[asyncio.Task[None]]
) -> None:
    """Stop the clients' tasks and close their sockets."""
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    for client in clients:
        if client.socket is not None:
            await client.socket.close()
