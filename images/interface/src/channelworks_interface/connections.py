"""What is open in this process right now, and whether it is still taking new work.

Shared by the bridges (which register themselves), the drain sequence (which closes them) and the
health server (which reports readiness). Lives on the server's event loop; no locks needed.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class ClosableSocket(Protocol):
    """A WebSocket the drain sequence can close."""

    async def close_for_drain(self, code: int) -> None: ...


class Connections:
    """Open WebSockets, HTTP requests in flight, and the process' lifecycle flags."""

    def __init__(self) -> None:
        self.sockets: dict[ClosableSocket, None] = {}  # insertion-ordered set
        self.http_in_flight = 0
        self.listening = False
        self.draining = False  # SIGTERM seen: /readyz fails, no new WebSockets
        self.closing_sockets = False  # the drain window began: late accepts are closed too
        self.deadline = asyncio.Event()  # the exit deadline: answer whatever is left, now
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def ready(self) -> bool:
        return self.listening and not self.draining

    def add_socket(self, socket: ClosableSocket) -> None:
        self.sockets[socket] = None
        self._idle.clear()

    def remove_socket(self, socket: ClosableSocket) -> None:
        self.sockets.pop(socket, None)
        self._update_idle()

    def http_started(self) -> None:
        self.http_in_flight += 1
        self._idle.clear()

    def http_finished(self) -> None:
        self.http_in_flight -= 1
        self._update_idle()

    def _update_idle(self) -> None:
        if not self.sockets and self.http_in_flight == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no socket is open and no HTTP request is in flight."""
        await self._idle.wait()
