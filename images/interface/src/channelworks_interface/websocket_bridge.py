"""One WebSocket, bridged: client frames onto the layer, the worker's replies back to the client.

Lifecycle: Daphne's ``websocket.connect`` → our own checks (draining, Origin) → a reply channel
from ``new_channel()`` → ``websocket.connect`` message (order 0) → wait for the worker's accept
(or refusal, or content, which implies accept) → frames as ``websocket.receive`` (order 1, 2...)
and replies relayed as they come → ``websocket.disconnect`` (order n+1) when the socket closes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import Any

from channelworks.exceptions import ChannelFull, MessageTooLarge
from channelworks.layers import history, naming
from channelworks_interface import limits, messages, recovery
from channelworks_interface.bridging import (
    Bridge,
    Receive,
    ReplyReader,
    Scope,
    Send,
    cancel_and_wait,
)
from channelworks_interface.limits import CloseCode
from channelworks_interface.metrics import PROTOCOL_WEBSOCKET
from channelworks_interface.prepared_frames import FRAME_WRITER_EXTENSION, FrameWriter

logger = logging.getLogger(__name__)
CONNECT_CHANNEL = "websocket.connect"
RECEIVE_CHANNEL = "websocket.receive"
# RFC 6455 7.4.1: reported for a close, never sent. No code in the close frame; no close frame.
NO_STATUS_RECEIVED = 1005
ABNORMAL_CLOSURE = 1006
_LIMIT_WORDS = {
    "rate_limited": "it kept sending faster than CHANNELWORKS_INTERFACE_MESSAGE_RATE",
    "slow_reader": "it does not read what it is sent (CHANNELWORKS_INTERFACE_MAX_OUTPUT_BYTES / "
    "WRITE_TIMEOUT)",
}


class _State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"  # we sent a close (or refusal); waiting for Daphne's disconnect


class WebSocketSession:
    """The bridge for one WebSocket connection; :meth:`run` is the ASGI application instance."""

    def __init__(self, bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
        self._bridge = bridge
        self._scope = scope
        self._receive = receive
        self._send = send
        self._state = _State.CONNECTING
        self._accepted = False
        self._started = time.monotonic()
        self._handshake_done = False
        self._order = 0  # the order of the last message sent for this socket
        self._sent_close: int | None = None  # the code of the close frame we sent, if any
        self._reply_channel = ""
        self._offered: list[str] = list(scope.get("subprotocols") or [])
        # Daphne's protocol writes prepared frames itself (daphne_glue); absent elsewhere.
        extensions = scope.get("extensions") or {}
        self._write_frame: FrameWriter | None = extensions.get(FRAME_WRITER_EXTENSION)
        # Recovery after reconnect (recovery.py): its request is taken out of the query string.
        self._recovery, self._scope = recovery.Recovery.for_scope(
            bridge.layer, bridge.disconnects, scope, send, bridge.config.resume_seconds
        )

    # Entry point -------------------------------------------------------------------------------

    async def run(self) -> None:
        event = await self._receive()
        if event.get("type") != "websocket.connect":
            return
        self._started = time.monotonic()
        try:
            await self._serve()
        finally:
            if self._write_frame is not None and self._reply_channel:
                self._bridge.layer.deliver_directly(self._reply_channel, None)
            self._bridge.connections.remove_socket(self)
            if self._accepted:
                self._bridge.metrics.connections.dec()

    async def _serve(self) -> None:
        config = self._bridge.config
        if self._bridge.connections.draining:
            await self._close(CloseCode.SERVICE_RESTART, "draining")
            return
        if not self._origin_allowed():
            await self._refuse()
            return
        self._reply_channel = await self._bridge.layer.new_channel()
        self._bridge.connections.add_socket(self)
        if self._write_frame is not None:
            self._bridge.layer.deliver_directly(self._reply_channel, self._deliver_directly)
        if await self._recovery.resume(self._reply_channel, self._scope["path"]):
            self._keep_only_the_path()
            await self._accept(None)  # a resumed session: no websocket.connect
            await self._relay()
            return
        scheme = limits.websocket_scheme(self._scope.get("headers", []), config.proxy_headers)
        # Built in the call: a local would keep the message (a copy of every header) as long
        # as the socket is open, as this frame lives that long.
        if await self._forward(
            CONNECT_CHANNEL, messages.websocket_connect(self._scope, self._reply_channel, scheme)
        ):
            self._keep_only_the_path()
            await self._relay()

    def _origin_allowed(self) -> bool:
        """Whether the socket's Origin is allowed (a refusal is logged and counted here)."""
        config = self._bridge.config
        headers = self._scope.get("headers", [])
        if limits.origin_allowed(
            headers,
            config.allowed_origins,
            require_origin=config.require_origin,
            trust_forwarded_host=config.proxy_headers,
        ):
            return True
        logger.info("refused a WebSocket from origin %r (403)", limits.header(headers, b"origin"))
        self._bridge.metrics.refused(PROTOCOL_WEBSOCKET, "origin")
        return False

    def _keep_only_the_path(self) -> None:
        """Once the socket's websocket.connect is built (or it resumed a session), only the
        path of its scope is read (each later message carries it): the headers, the query
        string and the addresses are let go for the rest of the socket's life."""
        self._scope = {"path": self._scope["path"]}

    async def close_for_drain(self, code: int) -> None:
        """Close this socket because the process is draining (called by the drain sequence)."""
        await self._close(code, "draining")

    # Relaying ----------------------------------------------------------------------------------

    async def _relay(self) -> None:
        """Run until Daphne reports the socket closed and the disconnect message is sent.

        The client's events are read in this task (the connection's application instance), the
        replies in one task of its own: two tasks per socket, each a plain loop, which meet only
        here, once per connection. If the replies' task fails, this one is cancelled and the
        failure raised here, as Daphne expects of an application that broke."""
        relaying = asyncio.current_task()
        replies = asyncio.ensure_future(self._replies())

        def replies_ended(task: asyncio.Future[None]) -> None:
            if relaying is not None and not task.cancelled() and task.exception() is not None:
                relaying.cancel()

        replies.add_done_callback(replies_ended)
        try:
            await self._client_events()
        except asyncio.CancelledError:
            if replies.done() and not replies.cancelled() and replies.exception() is not None:
                replies.result()  # re-raise what went wrong in it
            raise
        finally:
            replies.remove_done_callback(replies_ended)
            await cancel_and_wait(replies)

    async def _replies(self) -> None:
        """Apply the worker's replies until this side closes the socket (or the task is
        cancelled because the client went away)."""
        if not await self._await_accept():
            return
        await self._recovery.opened()
        layer, channel = self._bridge.layer, self._reply_channel
        while not self._closing():
            try:
                reply = await layer.receive(channel)
            except Exception:
                await self._reply_failed()
                return
            if self._closing():
                return  # we closed while it was on its way: nobody reads it any more
            self._bridge.metrics.message_out(PROTOCOL_WEBSOCKET)
            await self._apply(reply)

    async def _await_accept(self) -> bool:
        """Apply replies while the socket is connecting, for ``connect_timeout`` at most; True
        once it is open. A reply that arrives as the time runs out is not lost (ReplyReader)."""
        replies = ReplyReader(self._bridge.layer, self._reply_channel)
        connect_timeout = self._bridge.config.connect_timeout
        try:
            while self._state is _State.CONNECTING:
                left = max(0.0, self._started + connect_timeout - time.monotonic())
                done, _ = await asyncio.wait({replies.pending()}, timeout=left)
                if not done:
                    logger.warning(
                        "no worker answered websocket.connect for %s within %gs; closing %d",
                        self._scope.get("path"),
                        connect_timeout,
                        CloseCode.TRY_AGAIN_LATER,
                    )
                    await self._close(CloseCode.TRY_AGAIN_LATER, "timeout")
                    return False
                try:
                    reply = replies.take()
                except Exception:
                    await self._reply_failed()
                    return False
                self._bridge.metrics.message_out(PROTOCOL_WEBSOCKET)
                await self._apply(reply)
        finally:
            await replies.close()
        return self._state is _State.OPEN

    def _closing(self) -> bool:
        return self._state is _State.CLOSING

    async def _reply_failed(self) -> None:
        logger.exception(
            "reading reply channel %s failed; closing", naming.loggable(self._reply_channel)
        )
        await self._close(CloseCode.INTERNAL_ERROR, "layer_error")

    async def _client_events(self) -> None:
        """Forward what Daphne reports of the client until it reports the socket closed."""
        while True:
            event = await self._receive()
            kind = event.get("type")
            if kind == "websocket.receive":
                if self._state is not _State.OPEN:
                    continue  # frames racing our own close are dropped
                self._order += 1
                message = self._recovery.annotate(
                    messages.websocket_receive(self._scope, self._reply_channel, self._order, event)
                )
                await self._forward(RECEIVE_CHANNEL, message)
            elif kind == "websocket.disconnect":
                self._order += 1
                code = int(event.get("code") or NO_STATUS_RECEIVED)
                if code == ABNORMAL_CLOSURE and self._sent_close is not None:
                    # We closed, and the client dropped the connection instead of answering
                    # our close frame: the consumer learns why we closed, not that it was lost.
                    code = self._sent_close
                message = self._recovery.annotate(
                    messages.websocket_disconnect(
                        self._scope, self._reply_channel, self._order, code
                    )
                )
                if await self._recovery.park(message, code, self._sent_close):
                    return  # its client may resume it; the disconnect is reported if not
                await self._bridge.disconnects.send(message)  # delivered, whatever it takes
                return
            elif kind == limits.LIMIT_EVENT:
                reason = str(event.get("reason"))
                logger.warning(
                    "closing %s with %d: %s",
                    naming.loggable(self._reply_channel),
                    CloseCode.POLICY_VIOLATION,
                    _LIMIT_WORDS.get(reason, reason),
                )
                await self._close(CloseCode.POLICY_VIOLATION, reason)

    # Applying replies --------------------------------------------------------------------------

    def _deliver_directly(self, payload: bytes) -> bool:
        """The layer's offer of a reply while ``_replies`` waits idle: a plain frame for an open
        socket is written here (framed once for every socket a broadcast reaches); anything
        else (False) wakes ``_replies``, which applies it as :meth:`_apply` says."""
        if self._state is not _State.OPEN or self._bridge.connections.closing_sockets:
            return False
        frame = self._bridge.frames.frame_of(payload)
        if frame is None or self._write_frame is None or not self._write_frame(frame):
            return False
        self._bridge.metrics.message_out(PROTOCOL_WEBSOCKET)
        return True

    async def _apply(self, reply: dict[str, Any]) -> None:
        if history.POSITION_FIELD in reply:  # a message of a group with history
            rest = await self._recovery.deliver(reply)
            if rest is None:
                return
            reply = rest
        if self._state is _State.OPEN and not self._bridge.connections.closing_sockets:
            frame = messages.content_only_frame(reply)
            if frame is not None:  # the common case, a frame for an open socket: send it
                await self._send(frame)
                return
        try:
            wanted = messages.websocket_reply(reply, self._offered)
        except messages.InvalidReply as error:
            logger.warning(
                "invalid reply on %s: %s; closing", naming.loggable(self._reply_channel), error
            )
            await self._close(CloseCode.INTERNAL_ERROR, "worker_error")
            return
        accepted_now = False
        if self._state is _State.CONNECTING:
            refuses = wanted.accept is False or (
                wanted.accept is None and not wanted.frames and wanted.close is not None
            )
            if refuses:
                await self._refuse()
                return
            if not (wanted.accept or wanted.frames):
                return  # nothing that concerns a socket still connecting
            await self._accept(wanted.subprotocol)
            accepted_now = True
        for frame in wanted.frames:
            await self._send(frame)
        if wanted.close is not None:
            await self._send_close(wanted.close)
        elif accepted_now and self._bridge.connections.closing_sockets:
            # Accepted after the drain began: this process will not keep it. A socket open
            # before keeps its turn in the drain window, whatever reaches it meanwhile.
            await self._close(CloseCode.SERVICE_RESTART, "draining")

    async def _accept(self, subprotocol: str | None) -> None:
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol})
        self._state = _State.OPEN
        self._accepted = True
        self._bridge.metrics.connections.inc()
        self._handshake_finished()

    async def _refuse(self) -> None:
        """Refuse the handshake: Daphne answers HTTP 403."""
        self._state = _State.CLOSING
        self._handshake_finished()
        await self._send({"type": "websocket.close"})

    async def _close(self, code: int, reason: str) -> None:
        """Close with ``code``; a socket not accepted yet is accepted first, so the client sees
        the code (browsers hide the HTTP status of a refused handshake)."""
        if self._state is _State.CLOSING:
            return
        self._bridge.metrics.refused(PROTOCOL_WEBSOCKET, reason)
        if self._state is _State.CONNECTING:
            await self._accept(None)
        await self._send_close(int(code))

    async def _send_close(self, code: int) -> None:
        self._state = _State.CLOSING
        self._sent_close = code
        await self._send({"type": "websocket.close", "code": code})

    def _handshake_finished(self) -> None:
        if not self._handshake_done:
            self._handshake_done = True
            self._bridge.metrics.handshake_duration.observe(time.monotonic() - self._started)

    # Forwarding to the layer -------------------------------------------------------------------

    async def _forward(self, channel: str, message: dict[str, Any]) -> bool:
        """Send one message onto the layer; on failure close the socket with the matching code."""
        try:
            await self._bridge.layer.send(channel, message)
        except ChannelFull:
            logger.warning(
                "channel %s is full; closing %s", channel, naming.loggable(self._reply_channel)
            )
            await self._close(CloseCode.TRY_AGAIN_LATER, "channel_full")
            return False
        except MessageTooLarge as error:
            logger.info("message for %s too large (%s); closing", channel, error)
            await self._close(CloseCode.MESSAGE_TOO_BIG, "too_large")
            return False
        except Exception:
            logger.exception(
                "sending to %s failed; closing %s", channel, naming.loggable(self._reply_channel)
            )
            await self._close(CloseCode.INTERNAL_ERROR, "layer_error")
            return False
        self._bridge.metrics.message_in(PROTOCOL_WEBSOCKET)
        return True
