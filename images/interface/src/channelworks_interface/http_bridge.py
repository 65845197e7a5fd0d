"""One HTTP request, bridged: the whole request as one ``http.request`` message, the reply
``{status, headers, content, more_content}`` (and further ``{content, more_content}`` chunks of a
streaming response) relayed back as they come.

The interface answers itself when it must: 413 (body over the limit), 503 (worker channel full,
layer unreachable, or the process is exiting), 504 (no worker reply in time), 502 (a reply it
cannot understand).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

from channelworks.exceptions import ChannelFull, MessageTooLarge
from channelworks_interface import messages
from channelworks_interface.bridging import Bridge, Receive, ReplyReader, Scope, Send
from channelworks_interface.metrics import PROTOCOL_HTTP

logger = logging.getLogger(__name__)
REQUEST_CHANNEL = "http.request"


class _Wait(enum.Enum):
    TIMEOUT = "timeout"
    CLIENT_GONE = "client_gone"
    EXITING = "exiting"
    LAYER_ERROR = "layer_error"


class _BodyTooLarge(Exception):
    pass


class HttpExchange:
    """The bridge for one HTTP request; :meth:`run` is the ASGI application instance."""

    def __init__(self, bridge: Bridge, scope: Scope, receive: Receive, send: Send) -> None:
        self._bridge = bridge
        self._scope = scope
        self._receive = receive
        self._send = send
        self._status: int | None = None

    async def run(self) -> None:
        connections = self._bridge.connections
        connections.http_started()
        try:
            await self._exchange()
        finally:
            connections.http_finished()
            if self._status is not None:
                self._bridge.metrics.http_requests.labels(str(self._status)).inc()

    async def _exchange(self) -> None:
        try:
            body = await self._read_body()
        except _BodyTooLarge:
            await self._answer(413, "Request body too large", "too_large")
            return
        if body is None:
            return  # the client went away before sending its whole request
        layer = self._bridge.layer
        reply_channel = await layer.new_channel()
        request = messages.http_request(self._scope, reply_channel, body)
        try:
            await layer.send(REQUEST_CHANNEL, request)
        except ChannelFull:
            logger.warning("channel %s is full; answering 503", REQUEST_CHANNEL)
            await self._answer(503, "Service overloaded, try again later", "channel_full")
            return
        except MessageTooLarge:
            await self._answer(413, "Request too large", "too_large")
            return
        except Exception:
            logger.exception("sending to %s failed; answering 503", REQUEST_CHANNEL)
            await self._answer(503, "Service unavailable", "layer_error")
            return
        self._bridge.metrics.message_in(PROTOCOL_HTTP)
        replies = ReplyReader(layer, reply_channel)
        watch = _Watch(self._receive, self._bridge.connections.deadline)
        try:
            await self._relay(replies, watch)
        finally:
            await replies.close()
            watch.close()

    async def _read_body(self) -> bytes | None:
        limit = self._bridge.config.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._receive()
            if event.get("type") == "http.disconnect":
                return None
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge()
            chunks.append(chunk)
            if not event.get("more_body", False):
                return b"".join(chunks)

    async def _relay(self, replies: ReplyReader, watch: _Watch) -> None:
        config = self._bridge.config
        first = await watch.next_reply(replies, config.http_timeout)
        if first is _Wait.TIMEOUT:
            logger.warning(
                "no worker answered %s %s within %gs; answering 504",
                self._scope.get("method"),
                self._scope.get("path"),
                config.http_timeout,
            )
            await self._answer(504, "No worker answered in time", "timeout")
            return
        if first is _Wait.EXITING:
            await self._answer(503, "Server shutting down, try again", "draining")
            return
        if first is _Wait.LAYER_ERROR:
            await self._answer(503, "Service unavailable", "layer_error")
            return
        if first is _Wait.CLIENT_GONE:
            return
        try:
            start = messages.http_response_start(first)
            body = messages.http_response_body(first)
        except messages.InvalidReply as error:
            logger.warning(
                "invalid HTTP reply to %s: %s; answering 502", self._scope["path"], error
            )
            await self._answer(502, "Invalid response from the application", "worker_error")
            return
        if self._bridge.connections.draining:
            start["headers"].append((b"connection", b"close"))
        self._bridge.metrics.message_out(PROTOCOL_HTTP)
        self._status = start["status"]
        await self._send(start)
        await self._send(body)
        while body["more_body"]:
            chunk = await watch.next_reply(replies, config.http_stream_timeout)
            if isinstance(chunk, _Wait):
                if chunk is _Wait.TIMEOUT:
                    logger.warning(
                        "streaming response to %s stalled for %gs; ending it",
                        self._scope.get("path"),
                        config.http_stream_timeout,
                    )
                    self._bridge.metrics.refused(PROTOCOL_HTTP, "timeout")
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            self._bridge.metrics.message_out(PROTOCOL_HTTP)
            try:
                body = messages.http_response_body(chunk)
            except messages.InvalidReply as error:
                logger.warning("invalid HTTP chunk: %s; ending the response", error)
                body = {"type": "http.response.body", "body": b"", "more_body": False}
            await self._send(body)

    async def _answer(self, status: int, text: str, reason: str) -> None:
        self._bridge.metrics.refused(PROTOCOL_HTTP, reason)
        start, body = messages.plain_response(status, text)
        if status == 503:
            start["headers"].append((b"retry-after", b"1"))
        self._status = status
        await self._send(start)
        await self._send(body)


class _Watch:
    """Waits for a reply while watching for the client leaving and the process' exit deadline."""

    def __init__(self, receive: Receive, deadline: asyncio.Event) -> None:
        self._gone = asyncio.ensure_future(self._client_gone(receive))
        self._exiting = asyncio.ensure_future(deadline.wait())

    @staticmethod
    async def _client_gone(receive: Receive) -> None:
        while (await receive()).get("type") != "http.disconnect":
            pass

    async def next_reply(self, replies: ReplyReader, timeout: float) -> dict[str, Any] | _Wait:
        reading = replies.pending()
        await asyncio.wait(
            {reading, self._gone, self._exiting},
            timeout=timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if reading.done():
            try:
                return replies.take()
            except Exception:
                logger.exception("reading an HTTP reply channel failed")
                return _Wait.LAYER_ERROR
        if self._gone.done():
            return _Wait.CLIENT_GONE
        if self._exiting.done():
            return _Wait.EXITING
        return _Wait.TIMEOUT

    def close(self) -> None:
        self._gone.cancel()
        self._exiting.cancel()
