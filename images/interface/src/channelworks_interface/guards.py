"""The Twisted-level protections of the interface: what one slow or greedy client may hold.

- :class:`ConnectionCap` counts open TCP connections (HTTP and WebSocket) and answers those over
  ``max_connections`` with ``503 Service Unavailable`` (``Retry-After: 1``) and a close.
- :class:`GuardedHTTPChannel` gives a request ``header_timeout`` seconds for its request line and
  headers (counted from the connection, or from the first byte of a keep-alive connection's next
  request) and ``body_timeout`` for its body, whatever pace the bytes come at; a late one is
  answered ``408`` and closed. A keep-alive connection idle for ``idle_timeout`` between requests
  is closed without a word. Before, a request sent one byte at a time stayed open for hours.
- :class:`OutputWatch` tells a WebSocket when its client stopped reading: Twisted pauses it once
  64 KiB wait to be written; what is written while paused, and how long it stays paused, are
  what ``max_output_bytes`` and ``write_timeout`` limit (``daphne_glue`` acts on them).

Imported only by ``daphne_glue`` (after Daphne installed its reactor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import interfaces, protocol
from twisted.protocols import policies
from twisted.web import http
from zope.interface import implementer  # type: ignore[import-untyped]

from channelworks_interface.metrics import PROTOCOL_HTTP, Metrics

# Twisted's classes, untyped here: their stubs type the interfaces, not these overrides.
_Protocol: Any = protocol.Protocol
_WrappingFactory: Any = policies.WrappingFactory
_HTTPChannel: Any = http.HTTPChannel
LINGER_SECONDS = 2.0  # a refused or timed-out client gets this long to read the answer
_REFUSAL_READ_BYTES = 8192  # read at most this much of a refused request before answering


@dataclass(frozen=True)
class Protections:
    """The limits (see docs/interface.md) and where to count what they stop."""

    metrics: Metrics
    max_connections: int
    header_timeout: float
    body_timeout: float
    idle_timeout: float
    message_rate: float
    message_burst: int
    max_output_bytes: int
    write_timeout: float


def plain_answer(status: bytes, text: str, *extra: bytes) -> bytes:
    """A whole ``Connection: close`` HTTP/1.1 response with a short text body."""
    body = (text + "\n").encode()
    head = [
        b"HTTP/1.1 " + status,
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Length: " + str(len(body)).encode(),
        b"Connection: close",
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _linger_then_abort(transport: Any, call_later: Callable[..., Any]) -> None:
    """Close after what was written is sent; drop the connection if the client does not read."""
    transport.loseConnection()
    call_later(LINGER_SECONDS, transport.abortConnection)


# Connection cap ----------------------------------------------------------------------------------


class _Refusal(_Protocol):  # type: ignore[misc]
    """Reads the start of the request (so closing does not reset it), answers 503, closes."""

    def __init__(self, call_later: Callable[..., Any]) -> None:
        self._call_later = call_later
        self._seen = b""
        self._answered = False
        self._timer: Any = None

    def connectionMade(self) -> None:
        self._timer = self._call_later(LINGER_SECONDS, self._answer)

    def dataReceived(self, data: bytes) -> None:
        if self._answered:
            return
        self._seen = (self._seen + data)[-_REFUSAL_READ_BYTES:]
        if b"\r\n\r\n" in self._seen or len(self._seen) >= _REFUSAL_READ_BYTES:
            self._answer()

    def _answer(self) -> None:
        if self._answered:
            return
        self._answered = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.transport.write(
            plain_answer(
                b"503 Service Unavailable",
                "This server holds as many connections as it may; try again",
                b"Retry-After: 1",
            )
        )
        _linger_then_abort(self.transport, self._call_later)

    def connectionLost(self, reason: Any = None) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()


class ConnectionCap(_WrappingFactory):  # type: ignore[misc]
    """Wraps the HTTP factory: at most ``max_connections`` open connections, counted in a gauge;
    more are refused with 503. (Daphne's WebSocket upgrade keeps working through the wrapper:
    it is how Daphne supports TLS.)"""

    def __init__(self, wrapped: Any, protections: Protections, call_later: Any) -> None:
        super().__init__(wrapped)
        self._protections = protections
        self._call_later = call_later

    def buildProtocol(self, addr: Any) -> Any:
        metrics = self._protections.metrics
        if len(self.protocols) >= self._protections.max_connections:
            metrics.refused(PROTOCOL_HTTP, "connection_limit")
            metrics.http_requests.labels("503").inc()
            refusal = _Refusal(self._call_later)
            refusal.factory = self
            return refusal
        return super().buildProtocol(addr)

    def registerProtocol(self, p: Any) -> None:
        super().registerProtocol(p)
        self._protections.metrics.tcp_connections.set(len(self.protocols))

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)
        self._protections.metrics.tcp_connections.set(len(self.protocols))


# HTTP read timeouts ------------------------------------------------------------------------------


class GuardedHTTPChannel(_HTTPChannel):  # type: ignore[misc]
    """Twisted's HTTP channel with deadlines for a request's headers and its body."""

    protections: Protections  # set by the factory
    _deadline: Any = None
    _request_started = False  # a byte of the current request arrived
    _idle = False  # between requests of a keep-alive connection
    _waiting_for_body = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self._expect_headers()

    def dataReceived(self, data: bytes) -> None:
        if self._idle:  # the next request begins: its headers have header_timeout from now
            self._expect_headers()
        self._request_started = True
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._cancel_deadline()
        self._waiting_for_body = True
        self._deadline = self.callLater(self.protections.body_timeout, self._too_slow)
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._cancel_deadline()  # the bridge's own timeouts take over (504)
        self._waiting_for_body = False
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        if self.persistent:  # first: the next request may already be buffered, and run now
            self._wait_idle()
        super().requestDone(request)

    def connectionLost(self, reason: Any) -> None:
        self._cancel_deadline()
        super().connectionLost(reason)

    def _expect_headers(self) -> None:
        self._cancel_deadline()
        self._request_started = self._idle = False
        self._deadline = self.callLater(self.protections.header_timeout, self._too_slow)

    def _wait_idle(self) -> None:
        """A keep-alive connection between requests: closed after ``idle_timeout`` (longer than
        the proxies' in front keep theirs, so they never send on a connection we are closing)."""
        self._cancel_deadline()
        self._request_started = False
        self._idle = True
        self._deadline = self.callLater(self.protections.idle_timeout, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport is None:
            return
        if self._request_started or self._waiting_for_body:
            what = "body" if self._waiting_for_body else "request headers"
            metrics = self.protections.metrics
            metrics.refused(PROTOCOL_HTTP, "read_timeout")
            metrics.http_requests.labels("408").inc()
            transport.write(
                plain_answer(b"408 Request Timeout", f"The {what} did not arrive in time")
            )
        # else: an idle keep-alive connection; closed without a word, as servers do
        _linger_then_abort(transport, self.callLater)


# Slow readers ------------------------------------------------------------------------------------


@implementer(interfaces.IPushProducer)
class OutputWatch:
    """Registered as a WebSocket transport's producer: Twisted pauses it when the client does not
    read. ``queued`` counts what was written while paused; ``on_stuck`` is called once it stayed
    paused for ``write_timeout``."""

    def __init__(self, write_timeout: float, call_later: Any, on_stuck: Callable[[], None]):
        self.paused = False
        self.queued = 0
        self._write_timeout = write_timeout
        self._call_later = call_later
        self._on_stuck = on_stuck
        self._timer: Any = None

    def pauseProducing(self) -> None:
        if not self.paused:
            self.paused = True
            self._timer = self._call_later(self._write_timeout, self._on_stuck)

    def resumeProducing(self) -> None:
        self.paused = False
        self.queued = 0
        self._cancel()

    def stopProducing(self) -> None:
        self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
