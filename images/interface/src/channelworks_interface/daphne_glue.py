"""Our two small changes to Daphne, kept apart because importing Daphne has side effects.

``daphne.server`` installs Twisted's asyncio reactor when imported, so only
:func:`channelworks_interface.server.InterfaceServer.run` imports this module.

- WebSocket closes with any code a server may send (1001-1014, not only 1000 and 3000-4999 as
  autobahn's ``sendClose`` allows), so the interface can say 1009, 1011, 1012 and 1013; and a
  frame over the size limit is answered with a 1009 close frame rather than a dropped connection.
- An HTTP request body over ``max_body_bytes`` is refused while it arrives: a ``Content-Length``
  over the limit is answered 413 before one byte of the body is read, a chunked body as soon as
  it passes the limit; the connection is closed and nothing is spooled to a temporary file or
  queued for the application (Twisted otherwise buffers the whole body, in /tmp above 100 KB).
- The server keeps the ports it listens on, so draining can stop listening, and reports when
  it listens, for ``/readyz``.
- autobahn's debug-line arguments are formatted only when a debug line is written
  (:func:`defer_debug_formatting`).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

from autobahn.twisted import websocket as autobahn_twisted
from autobahn.websocket import protocol as autobahn_protocol
from daphne import http_protocol, ws_protocol
from daphne import server as daphne_server  # type: ignore[import-untyped, unused-ignore]
from twisted.internet import defer

# autobahn.util's text highlighters, which autobahn's WebSocket modules pass to log.debug().
_DEBUG_FORMATTERS = ("hltype", "hlval")
_DEBUG_FORMATTING_MODULES = (autobahn_protocol, autobahn_twisted)


def _server_may_send(code: int) -> bool:
    return code == 1000 or 3000 <= code <= 4999


class WebSocketProtocol(ws_protocol.WebSocketProtocol):  # type: ignore[misc]
    """Daphne's protocol, closing with the reserved codes a server may use (RFC 6455 7.4)."""

    def serverClose(self, code: int | None = None) -> None:
        code = 1000 if code is None else int(code)
        if _server_may_send(code):
            self.sendClose(code=code)
        else:
            self.sendCloseFrame(code=code)


def _too_large_response(limit: int) -> bytes:
    body = f"Request body too large (the limit is {limit} bytes)\n".encode()
    return (
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )


def _no_continue() -> None:
    pass


class LimitedRequest(http_protocol.WebRequest):  # type: ignore[misc]
    """Daphne's request, refusing a body over the server's ``max_body_bytes`` as it arrives."""

    _body_bytes = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.server.max_body_bytes:
            self.channel._send100Continue = _no_continue  # no "go ahead" after our refusal
            self._refuse()  # before reading any of it
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(data)
        if self._body_bytes > self.server.max_body_bytes:
            self._refuse()  # a chunked (or lying) body, as soon as it passes the limit
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        self._refused = True
        content = getattr(self, "content", None)
        if content is not None:
            content.close()  # drops a temporary file at once
        self.content = io.BytesIO()
        self.server.on_body_too_large()
        transport = self.channel.transport
        if transport is not None:
            transport.write(_too_large_response(self.server.max_body_bytes))
            transport.pauseProducing()  # read no more of the body
        self.channel.loseConnection()


class _LimitedHTTPFactory(http_protocol.HTTPFactory):  # type: ignore[misc]
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = LimitedRequest
        return protocol


class Server(daphne_server.Server):  # type: ignore[misc]
    """Daphne's server, with our WebSocket protocol and a handle on its listening ports."""

    def __init__(
        self,
        *args: Any,
        on_listening: Callable[[], None],
        max_body_bytes: int,
        on_body_too_large: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ports: list[Any] = []
        self.max_body_bytes = max_body_bytes
        self.on_body_too_large = on_body_too_large
        self._on_listening = on_listening
        self._ws_factory: Any = None
        self._http_factory: Any = None

    # Daphne's run() builds its HTTP factory; ours makes requests that refuse large bodies.
    @property
    def http_factory(self) -> Any:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: Any) -> None:
        self._http_factory = _LimitedHTTPFactory(factory.server)

    # Daphne's run() builds its WebSocket factory; give it our protocol as it is assigned.
    @property
    def ws_factory(self) -> Any:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: Any) -> None:
        factory.protocol = WebSocketProtocol
        # Fail a connection (oversized frame, protocol error) with a close frame carrying the
        # code (1009, 1002...) instead of dropping TCP, autobahn's default.
        factory.setProtocolOptions(failByDrop=False)
        self._ws_factory = factory

    def listen_success(self, port: Any) -> None:
        self.ports.append(port)
        super().listen_success(port)
        self._on_listening()

    async def stop_listening(self) -> None:
        """Close the listening sockets; open connections stay."""
        ports, self.ports = self.ports, []
        for port in ports:
            await defer.maybeDeferred(port.stopListening).asFuture(asyncio.get_running_loop())


class _FormattedOnDemand:
    """A log argument that calls its formatter only when the log line is written."""

    __slots__ = ("_args", "_formatter")

    def __init__(self, formatter: Callable[..., str], args: tuple[Any, ...]) -> None:
        self._formatter = formatter
        self._args = args

    def __str__(self) -> str:
        return str(self._formatter(*self._args))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return repr(str(self))


def _on_demand(formatter: Callable[..., str]) -> Callable[..., _FormattedOnDemand]:
    def deferred(*args: Any) -> _FormattedOnDemand:
        return _FormattedOnDemand(formatter, args)

    deferred.on_demand = True  # type: ignore[attr-defined]
    return deferred


def defer_debug_formatting() -> None:
    """Make the arguments of autobahn's debug lines cost nothing while debug logging is off.

    autobahn writes ``log.debug("{func} received {data_len} bytes for peer {peer}",
    func=hltype(self.dataReceived), peer=hlval(self.peer), ...)`` for every read from a socket and
    the same for every frame it sends. Below debug level the call is a no-op, but its arguments
    are built first: ``inspect`` checks and ANSI-coloured strings, about 3 µs each time, 2-3% of
    the interface's CPU under echo load. In those two modules only (where the highlighters are
    used for nothing but log arguments), they are replaced by ones that format when the line is
    written, so debug output (``txaio`` at debug level) reads exactly as before. Idempotent.
    """
    for module in _DEBUG_FORMATTING_MODULES:
        for name in _DEBUG_FORMATTERS:
            formatter = getattr(module, name)
            if not getattr(formatter, "on_demand", False):
                setattr(module, name, _on_demand(formatter))
