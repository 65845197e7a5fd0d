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
- The protections of ``guards``: a connection cap, header and body read timeouts; and per
  WebSocket, a message rate (frames over it are held and the socket is not read until it is
  within its rate again: TCP slows the client down) and an output limit (a client that stops
  reading is reported once ``max_output_bytes`` wait behind its full socket buffer or it stayed
  blocked for ``write_timeout``; further data frames for it are dropped). Both are reported to
  the socket's bridge as a ``channelworks.limit`` event, which closes it (1008).
- A WebSocket connection ends with a half-close, not autobahn's reset: the client can still
  read the close frame (and its code) while it is sending.
- The server keeps the ports it listens on, so draining can stop listening, and reports when
  it listens, for ``/readyz``.
- autobahn's debug-line arguments are formatted only when a debug line is written
  (:func:`defer_debug_formatting`), and the event loop calls the reactor's read step without
  Twisted's logging context around it (:func:`read_sockets_directly`).
- Whole small client frames are read in one step (``client_frames``), not by autobahn's
  per-frame machinery, which still reads everything else.
- A prepared frame (``prepared_frames``: a broadcast framed once for every member) is written
  straight to the socket, offered to the application as the scope extension
  ``channelworks.frame_writer``: no ASGI send, no autobahn framing, and no Twisted write buffer
  while the socket takes it all (one ``send()``; what it does not take is left to Twisted).
- A connection's events reach its application through an ``EventQueue`` (``event_queue``), not
  an ``asyncio.Queue``: about 3 KiB less for every open socket.
- A protocol reads autobahn's options (``setProtocolOptions``) from its factory instead of
  holding a copy of the 29 of them, and makes its queue of held frames, and autobahn's queue of
  chopped writes, only when it holds one: an idle socket's protocol has about 80 attributes
  instead of 109, which fit a dict half the size, and no empty queues (about 3 KiB less per
  open socket). Once a socket is open it lets go of its handshake: the raw request and
  response and the parsed headers.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import io
from collections.abc import Callable
from typing import Any

from autobahn.twisted import websocket as autobahn_twisted
from autobahn.websocket import protocol as autobahn_protocol
from daphne import http_protocol, ws_protocol
from daphne import server as daphne_server  # type: ignore[import-untyped, unused-ignore]
from twisted.internet import defer, tcp
from twisted.internet import reactor as _reactor
from twisted.protocols import policies
from txaio import tx as txaio_tx

from channelworks_interface import client_frames, guards, limits
from channelworks_interface.event_queue import EventQueue
from channelworks_interface.pacing import TokenBucket
from channelworks_interface.prepared_frames import FRAME_WRITER_EXTENSION

# autobahn.util's text highlighters, which autobahn's WebSocket modules pass to log.debug().
_DEBUG_FORMATTERS = ("hltype", "hlval")
_DEBUG_FORMATTING_MODULES = (autobahn_protocol, autobahn_twisted)
reactor: Any = _reactor  # typed as the bare module
_NO_OP = txaio_tx._no_op  # what txaio's logger methods are below their level
_CONTROL_OPCODES = 8  # frames with an opcode from 8 (close, ping, pong) are never dropped
# What every socket holds until it holds back a frame (an empty deque is 760 bytes); it can hold
# nothing (maxlen 0), so a frame appended to it by mistake is dropped, never shared.
_NOTHING_HELD: collections.deque[tuple[bytes, bool]] = collections.deque(maxlen=0)


def _server_may_send(code: int) -> bool:
    return code == 1000 or 3000 <= code <= 4999


class WebSocketProtocol(ws_protocol.WebSocketProtocol):  # type: ignore[misc]
    """Daphne's protocol, closing with the reserved codes a server may use (RFC 6455 7.4), with
    a message rate per socket and a limit on what waits for a client that does not read."""

    _limit_reported = False
    _lingering = False
    _linger_timer: Any = None
    _held: collections.deque[tuple[bytes, bool]] = _NOTHING_HELD  # its own once one is held
    _release: Any = None
    _send_queue: collections.deque[tuple[bytes, bool]] | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        protections: guards.Protections = self.factory.server_class.protections
        self._protections = protections
        self._bucket = TokenBucket(protections.message_rate, protections.message_burst)
        self._output = guards.OutputWatch(
            protections.write_timeout, reactor.callLater, lambda: self._report("slow_reader")
        )
        # The HTTP channel that read the upgrade request is the transport's producer; this
        # socket's own watch replaces it.
        self.transport.unregisterProducer()
        self.transport.registerProducer(self._output, True)
        self._tcp = _tcp_connection(self.transport)
        # Whole small data frames are read here (client_frames), not by autobahn's machinery,
        # when nothing that machinery adds is on: compression, frame logs, timings, observers.
        limits_ = [client_frames.MAX_PAYLOAD]
        limits_ += [n for n in (self.maxMessagePayloadSize, self.maxFramePayloadSize) if n > 0]
        self._payload_limit = min(limits_)
        self._reads_small_frames = not (
            self.logOctets or self.logFrames or self.trackedTimings or self._listeners
        )

    def onOpen(self) -> None:
        super().onOpen()
        self._forget_the_handshake()

    def _forget_the_handshake(self) -> None:
        """Let go of what the opening handshake left on the protocol for the socket's whole
        life and nothing reads once it is open: the raw request and response, and the parsed
        headers (autobahn's and Daphne's: the application read them when the socket connected,
        the ``websocket.connect`` message carries them). The request's path stays (Daphne logs
        it when the socket closes). A browser's headers, cookies included, are often 1-2 KiB."""
        self.http_request_data = b""
        self.http_response_data = ""
        self.http_headers: dict[str, str] = {}
        self.clean_headers: list[tuple[bytes, bytes]] = []
        request = getattr(self, "request", None)
        if request is not None:
            request.headers = self.http_headers

    def serverClose(self, code: int | None = None) -> None:
        code = 1000 if code is None else int(code)
        if _server_may_send(code):
            self.sendClose(code=code)
        else:
            self.sendCloseFrame(code=code)

    # Incoming: whole small data frames read without autobahn's frame machinery.

    def _dataReceived(self, data: bytes) -> None:
        """autobahn's, but the complete, final, masked text and binary frames at the start of
        ``data`` are read by ``client_frames`` while this socket is open and between messages;
        autobahn reads the rest (control frames, fragments, anything it must check or refuse)."""
        start, size = 0, len(data)
        while start < size and self._between_messages():
            message = client_frames.next_message(data, start, self._payload_limit)
            if message is None:
                break
            payload, is_binary, start = message
            if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
                self._cancelAutoPingTimeoutCall()  # as autobahn does on any data frame
            self.onMessage(payload, is_binary)
        if start < size:
            super()._dataReceived(data[start:] if start else data)

    def _between_messages(self) -> bool:
        return (
            self._reads_small_frames
            and self.state == self.STATE_OPEN
            and not self.data
            and self.current_frame is None
            and not self.inside_message
            and self._perMessageCompress is None
            and not self.failedByMe
        )

    # Incoming: at most message_burst at once, message_rate per second after that.

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self._held or not self._bucket.take():
            self._hold(payload, isBinary)
            return
        super().onMessage(payload, isBinary)

    def _hold(self, payload: bytes, is_binary: bool) -> None:
        if self.muted or self._limit_reported:
            return
        if len(self._held) >= self._protections.message_burst:
            self._report("rate_limited")  # still sending after a whole burst was held back
            return
        if self._held is _NOTHING_HELD:
            self._held = collections.deque()
        self._held.append((payload, is_binary))
        if self._release is None:
            self._protections.metrics.throttled.inc()
            self.transport.pauseProducing()  # read nothing more from it for now
            self._release = reactor.callLater(self._bucket.wait(), self._release_held)

    def _release_held(self) -> None:
        self._release = None
        while self._held and self._bucket.take():
            payload, is_binary = self._held.popleft()
            super().onMessage(payload, is_binary)
        if self._held:
            self._release = reactor.callLater(self._bucket.wait(), self._release_held)
        elif self.transport is not None:
            self.transport.resumeProducing()

    # Ending: half-close and read what still comes, so the client finds the close frame.

    def dataReceived(self, data: bytes) -> None:
        if self._lingering:
            return  # the connection is ending: what the client still sends is read and dropped
        if self.log.debug is _NO_OP:
            self._dataReceived(data)  # autobahn's, without its debug line's arguments
        else:
            super().dataReceived(data)

    def _closeConnection(self, abort: bool = False) -> None:
        """How autobahn ends the TCP connection. It aborts (a reset) when the client answers the
        close frame, and when it has not answered within ``closeHandshakeTimeout`` (1 s). A reset
        can cost the client its close code: a client still sending (over its rate, or busy) has
        its next write refused, and its WebSocket library then gives up without reading the
        close frame waiting in its socket (1006 instead of 1008). So the interface half-closes:
        what it wrote goes out, then an end of stream; what the client still sends is read and
        dropped, and the connection ends when the client closes, or is aborted after
        ``guards.LINGER_SECONDS``."""
        connection = self._tcp
        if not abort or connection is None or not connection.connected or self._lingering:
            super()._closeConnection(abort)
            return
        self._lingering = True
        connection.unregisterProducer()  # a paused output watch would hold the half-close back
        connection.loseWriteConnection()
        connection.startReading()  # also when its message rate had paused reading
        self._linger_timer = reactor.callLater(guards.LINGER_SECONDS, connection.abortConnection)

    # Outgoing: a client that does not read is reported, and gets no more data frames.

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        output = getattr(self, "_output", None)
        if output is not None and output.paused and data and data[0] & 0x0F < _CONTROL_OPCODES:
            if self._limit_reported:
                return
            output.queued += len(data)
            if output.queued > self._protections.max_output_bytes:
                self._report("slow_reader")
                return
        if (sync or chopsize) and self._send_queue is None:
            self._send_queue = collections.deque()  # autobahn queues these writes
        super().sendData(data, sync, chopsize)

    @property
    def send_queue(self) -> Any:
        """autobahn's queue of chopped or synchronous writes (which it makes for every socket,
        760 bytes): made by :meth:`sendData` when such a write comes, an empty tuple until
        then (what autobahn reads of it is its length)."""
        return () if self._send_queue is None else self._send_queue

    @send_queue.setter
    def send_queue(self, queue: Any) -> None:
        if queue or self._send_queue is not None:  # autobahn's first, empty one is not kept
            self._send_queue = queue

    def write_prepared_frame(self, frame: bytes) -> bool:
        """Write a data frame built by ``messages.server_frame``; False (nothing written) when
        this socket is not open or compresses its messages: send it through Daphne then.

        While nothing waits in Twisted's buffer the frame goes to the socket with one ``send()``
        (what it does not take, and every frame while something waits, goes through Twisted's
        buffer, in order); a client that does not read meets the checks of :meth:`sendData`."""
        if self.state != self.STATE_OPEN or self._perMessageCompress is not None:
            return False
        connection = self._tcp
        if (
            connection is None
            or self._output.paused
            or connection.dataBuffer
            or connection._tempDataLen
            or not connection.connected
            or connection._writeDisconnected
        ):
            self.sendData(frame)
            return True
        try:
            sent = connection.socket.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = 0  # Twisted meets the error on its own write and closes the connection
        if sent < len(frame):
            connection.write(frame[sent:])
        return True

    def _report(self, reason: str) -> None:
        """Tell the socket's bridge to close it, once; it answers for it (code, metric, log)."""
        if self._limit_reported:
            return
        self._limit_reported = True
        self._held = _NOTHING_HELD
        queue = getattr(self, "application_queue", None)
        if queue is not None:
            queue.put_nowait({"type": limits.LIMIT_EVENT, "reason": reason})

    def connectionLost(self, reason: Any) -> None:
        if getattr(self, "_release", None) is not None and self._release.active():
            self._release.cancel()
        self._release = None
        if self._linger_timer is not None and self._linger_timer.active():
            self._linger_timer.cancel()
        output = getattr(self, "_output", None)
        if output is not None:
            output.stopProducing()
        super().connectionLost(reason)


class _FactoryOption:
    """One of autobahn's protocol options, read from the protocol's factory. autobahn copies
    every option into each protocol it builds unless the protocol has it already; with this on
    the class it has, so nothing is copied. A value set on one protocol still applies to it
    alone (a non-data descriptor: the instance's own attribute comes first)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, protocol: Any, owner: type | None = None) -> Any:
        if protocol is None:
            return self
        return getattr(protocol.factory, self._name)


for _option in WebSocketProtocol.CONFIG_ATTRS:
    setattr(WebSocketProtocol, _option, _FactoryOption(_option))


def _tcp_connection(transport: Any) -> Any:
    """The plain TCP connection under a WebSocket's transport (wrapped by the connection cap),
    or None when it is something else (TLS, a test transport): then frames go through Twisted."""
    while isinstance(transport, policies.ProtocolWrapper):
        transport = transport.transport
    if isinstance(transport, tcp.Connection) and not transport.TLS:
        return transport
    return None


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


class _GuardedHTTPFactory(http_protocol.HTTPFactory):  # type: ignore[misc]
    """Daphne's factory: our channel (read timeouts) and requests (body limit). No HTTP/2
    negotiation wrapper: that needs TLS, which the interface does not terminate."""

    protocol = guards.GuardedHTTPChannel

    def __init__(self, server: Any, protections: guards.Protections) -> None:
        super().__init__(server)
        self.protections = protections

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = LimitedRequest
        protocol.protections = self.protections
        return protocol


class Server(daphne_server.Server):  # type: ignore[misc]
    """Daphne's server, with our WebSocket protocol and a handle on its listening ports."""

    def __init__(
        self,
        *args: Any,
        on_listening: Callable[[], None],
        max_body_bytes: int,
        on_body_too_large: Callable[[], None],
        protections: guards.Protections,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.protections = protections
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
        guarded = _GuardedHTTPFactory(factory.server, self.protections)
        self._http_factory = guards.ConnectionCap(guarded, self.protections, reactor.callLater)

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

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> EventQueue | None:
        """Daphne's, with the prepared-frame writer in a WebSocket's scope extensions and an
        :class:`EventQueue` (not an ``asyncio.Queue``, about 3 KiB per connection) for the
        events of the connection."""
        connection = self.connections[protocol]
        assert "application_instance" not in connection  # Daphne's check: one per protocol
        writer = getattr(protocol, "write_prepared_frame", None)
        if scope.get("type") == "websocket" and writer is not None:
            scope.setdefault("extensions", {})[FRAME_WRITER_EXTENSION] = writer
        scope.setdefault("asgi", {"version": "3.0"})
        events = EventQueue()
        instance = self.application(
            scope=scope, receive=events.get, send=functools.partial(self.handle_reply, protocol)
        )
        connection["application_instance"] = asyncio.ensure_future(instance)
        return events

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


def read_sockets_directly() -> None:
    """Have the event loop call the reactor's read step itself for every socket that reads.

    Twisted's asyncio reactor registers each reader through ``log.callWithLogger``, which builds
    a logging context (the connection's log prefix, for Twisted's own log lines) around every
    read and logs what it raises: about 4 µs per read, one read per client message under an echo
    load. The read step (``_readOrWrite``) already catches and logs what a read raises, and the
    interface logs through Python's logging, which never sees Twisted's context; so readers are
    registered without it. Writers (only while Twisted buffers data) keep Twisted's way.
    Idempotent.
    """
    if getattr(reactor, "_channelworks_reads_directly", False):
        return
    twisted_add_reader = reactor.addReader
    loop = reactor._asyncioEventloop

    def add_reader(reader: Any) -> None:
        if reader in reactor._readers or reader in reactor._continuousPolling._readers:
            return
        fd = reader.fileno()
        try:
            loop.add_reader(fd, reactor._readOrWrite, reader, True)
        except OSError:
            reactor._unregisterFDInAsyncio(fd)
            twisted_add_reader(reader)  # Twisted's own handling (continuous polling, or raise)
            return
        reactor._readers[reader] = fd

    reactor.addReader = add_reader
    reactor._channelworks_reads_directly = True
