"""The small HTTP server on a process's metrics port: ``/metrics``, ``/healthz`` and ``/readyz``
(asyncio, no framework), the same for the interface, the worker and the operator.

It runs on the process's event loop, so ``/healthz`` answering means that loop still turns;
``live()`` adds what else the process counts as alive, ``ready()`` decides ``/readyz`` and
``state()``, when given, is the text ``/readyz`` answers (the operator's ``leader`` or
``standby``). Without a registry ``/metrics`` is not served (404: the operator keeps its probes
on a port of their own). One request per connection, answered and closed; ``HEAD`` gets the head
alone; a request that is not complete within 5 s, or larger than 8 KiB before its blank line,
gets 400; past ``MAX_CONNECTIONS`` open at once, a new connection is closed at once, so idle
clients cannot pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)
READ_TIMEOUT_SECONDS = 5.0
MAX_REQUEST_BYTES = 8192
MAX_CONNECTIONS = 64
TEXT = "text/plain; charset=utf-8"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def answer(
    method: str,
    path: str,
    registry: CollectorRegistry | None,
    ready: bool,
    live: bool,
    state: str | None = None,
) -> tuple[int, str, bytes]:
    """(status, content type, body) for one request: the probes' whole behaviour, pure."""
    if method not in ("GET", "HEAD"):
        return 405, TEXT, b"only GET and HEAD\n"
    path = path.split("?", 1)[0]
    if path == "/metrics" and registry is not None:
        return 200, CONTENT_TYPE_LATEST, generate_latest(registry)
    if path == "/healthz":
        return (200, TEXT, b"ok\n") if live else (503, TEXT, b"not live\n")
    if path == "/readyz":
        text = state or ("ready" if ready else "not ready")
        return (200 if ready else 503), TEXT, f"{text}\n".encode()
    served = "/metrics, /healthz or /readyz" if registry is not None else "/healthz or /readyz"
    return 404, TEXT, f"try {served}\n".encode()


class ProbeServer:
    """Serves the probes and metrics on ``host:port`` (port 0: any free port, see ``port``)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry | None,
        ready: Callable[[], bool],
        live: Callable[[], bool] = lambda: True,
        state: Callable[[], str] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._ready = ready
        self._live = live
        self._state = state
        self._server: asyncio.Server | None = None
        self._open = 0

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> int:
        """Listen; return the port (the one chosen when ``port`` was 0)."""
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_REQUEST_BYTES
        )
        paths = "/metrics, /healthz, /readyz" if self._registry is not None else "/healthz, /readyz"
        logger.info("serving %s on %s:%s", paths, self._host, self.port)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= MAX_CONNECTIONS:
            writer.close()
            return
        self._open += 1
        try:
            await self._answer(reader, writer)
        finally:
            self._open -= 1

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = "GET"
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_SECONDS)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) < 2:
                raise ValueError("no request line")
            method = parts[0].upper()
            state = self._state() if self._state is not None else None
            status, content_type, body = answer(
                method, parts[1], self._registry, self._ready(), self._live(), state
            )
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
        ):
            status, content_type, body = 400, TEXT, b"bad request\n"
        except Exception:
            logger.exception("probe request failed")
            status, content_type, body = 500, TEXT, b"error\n"
        head_bytes = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        with contextlib.suppress(ConnectionError):
            writer.write(head_bytes if method == "HEAD" else head_bytes + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
