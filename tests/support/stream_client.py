"""A Python client speaking the recovery protocol exactly as the shipped JavaScript client does
(``channels/js/websocketbridge.js``; docs/delivery.md): it sends its stream positions and resume
token in the ``cw`` parameter of every (re)connection, unwraps ``{"$cw": "m"}`` frames,
de-duplicates by offset, and reconnects after a drop with jittered backoff. It records what the
application would have seen, for tests and ``bench/delivery.py``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException


@dataclass
class Delivered:
    group: str
    epoch: str
    offset: int
    text: str
    at: float


@dataclass
class StreamClient:
    """Connect with :meth:`run` (a task); read :attr:`delivered` and the counters."""

    url: str  # ws://host:port/path/ (a query string may follow)
    min_delay: float = 0.2
    max_delay: float = 2.0
    positions: dict[str, tuple[str, int]] = field(default_factory=dict)
    token: str | None = None
    delivered: list[Delivered] = field(default_factory=list)
    plain: list[Any] = field(default_factory=list)  # frames of no stream (JSON-decoded)
    controls: list[dict[str, Any]] = field(default_factory=list)  # session/recovered/gone
    duplicates: int = 0  # stream frames the client dropped (offset already seen)
    connections: int = 0
    resumed: int = 0
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    connection: ClientConnection | None = None
    _stopping: bool = False

    def request_url(self) -> str:
        body = {"v": 1, "t": self.token, "s": {g: [e, o] for g, (e, o) in self.positions.items()}}
        value = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
        return f"{self.url}{'&' if '?' in self.url else '?'}cw={value}"

    async def run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                async with connect(self.request_url(), open_timeout=10, max_size=None) as ws:
                    self.connection = ws
                    self.connections += 1
                    attempt = 0
                    async for frame in ws:
                        self._receive(frame)
            except (OSError, TimeoutError, WebSocketException):
                pass
            finally:
                self.connection = None
                self.opened.clear()
            if self._stopping:
                return
            delay = min(self.max_delay, self.min_delay * 2**attempt)
            attempt += 1
            await asyncio.sleep(delay * (1 - 0.5 * random.random()))

    async def send(self, text: str) -> None:
        if self.connection is None:
            raise ConnectionError("not connected")
        await self.connection.send(text)

    async def stop(self) -> None:
        self._stopping = True
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()

    def _receive(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self.plain.append(frame)
            return
        message = json.loads(frame)
        kind = message.get("$cw") if isinstance(message, dict) else None
        if kind is None:
            self.plain.append(message)
            return
        if kind == "m":
            group, epoch, offset = message["s"], message["e"], message["o"]
            known = self.positions.get(group)
            if known is not None and known[0] == epoch and offset <= known[1]:
                self.duplicates += 1
                return
            self.positions[group] = (epoch, offset)
            self.delivered.append(Delivered(group, epoch, offset, message["text"], time.time()))
            return
        self.controls.append(message)
        if kind == "session":
            self.token = message.get("t")
            self.resumed += bool(message.get("resumed"))
            self.opened.set()
        elif kind == "gone":
            self.positions.pop(message["s"], None)
            if message.get("e"):
                self.positions[message["s"]] = (message["e"], message["o"])

    def texts(self, group: str) -> list[str]:
        return [d.text for d in self.delivered if d.group == group]
