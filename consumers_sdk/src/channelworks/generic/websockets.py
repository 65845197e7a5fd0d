"""Generic WebSocket consumers (Channels 1's ``channels.generic.websockets``).

Route one with ``route_class(ChatConsumer, path=r"^/chat/$")``; override ``connect``,
``receive`` and ``disconnect``. Class attributes:

- ``groups``: groups every connection joins on connect and leaves on disconnect (or override
  ``connection_groups(**kwargs)``);
- ``http_user``: ``message.user`` from the handshake's session cookie, kept for the connection
  (``http_user_and_session`` also keeps ``message.http_session``);
- ``channel_session``/``channel_session_user``: as the decorators of the same names;
- ``strict_ordering``/``slight_ordering``: accepted; ordering per connection is always on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from django.core.serializers.json import DjangoJSONEncoder

from channelworks import auth, exceptions
from channelworks import channel as channel_module
from channelworks.generic import base
from channelworks.layers import naming

logger = logging.getLogger(__name__)

CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007


def _frame(text: str | None, data: bytes | None, close: bool | int) -> dict[str, Any]:
    frame: dict[str, Any] = {}
    if text is not None:
        frame["text"] = text
    elif data is not None:
        frame["bytes"] = data
    elif not close:
        raise ValueError("you must pass text or bytes (or close)")
    if close:
        frame["close"] = close
    return frame


class WebsocketConsumer(base.BaseConsumer):
    """A WebSocket connection: ``connect``, ``receive(text=, bytes=)``, ``disconnect``."""

    method_mapping: ClassVar[dict[str, str]] = {
        "websocket.connect": "raw_connect",
        "websocket.receive": "raw_receive",
        "websocket.disconnect": "raw_disconnect",
    }
    http_user = False
    http_user_and_session = False
    strict_ordering = False
    slight_ordering = False
    groups: ClassVar[list[str] | tuple[str, ...] | None] = None

    def get_handler(self, message: Any, **kwargs: Any) -> Callable[..., Any]:
        if self.http_user or self.http_user_and_session:
            self.channel_session_user = True
        self.path = message.get("path")
        handler = super().get_handler(message, **kwargs)
        if self.http_user_and_session:
            return auth.channel_and_http_session_user_from_http(handler)
        if self.http_user:
            return auth.channel_session_user_from_http(handler)
        return handler

    def connection_groups(self, **kwargs: Any) -> list[str]:
        """Groups to join on connect and leave on disconnect (a list, not a string)."""
        return list(self.groups or [])

    def raw_connect(self, message: Any, **kwargs: Any) -> None:
        for group in self.connection_groups(**kwargs):
            channel_module.Group(group, channel_layer=message.channel_layer).add(
                message.reply_channel
            )
        self.connect(message, **kwargs)

    def connect(self, message: Any, **kwargs: Any) -> None:
        """Called on ``websocket.connect``; the default accepts the connection."""
        if "multiplexer" not in kwargs:
            self.accept()

    def accept(self) -> None:
        """Accept the connection (send ``{"accept": True}``)."""
        self.message.reply_channel.send({"accept": True})

    def raw_receive(self, message: Any, **kwargs: Any) -> None:
        if message.get("text") is not None:
            self.receive(text=message["text"], **kwargs)
        else:
            self.receive(bytes=message.get("bytes"), **kwargs)

    def receive(self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any) -> None:
        """Called with each frame: ``text`` or ``bytes``."""

    def send(
        self, text: str | None = None, bytes: bytes | None = None, close: bool | int = False
    ) -> None:
        """Send a frame down this connection; ``close=True`` (or a close code) closes it after."""
        self.message.reply_channel.send(_frame(text, bytes, close))

    @classmethod
    def group_send(
        cls,
        name: str,
        text: str | None = None,
        bytes: bytes | None = None,
        close: bool | int = False,
    ) -> None:
        """Send a frame to every connection in group ``name``."""
        channel_module.Group(name).send(_frame(text, bytes, close))

    def close(self, status: bool | int = True) -> None:
        """Close the connection (``status`` may be a close code); before accept: reject it."""
        self.message.reply_channel.send({"close": status})

    def raw_disconnect(self, message: Any, **kwargs: Any) -> None:
        for group in self.connection_groups(**kwargs):
            channel_module.Group(group, channel_layer=message.channel_layer).discard(
                message.reply_channel
            )
        self.disconnect(message, **kwargs)

    def disconnect(self, message: Any, **kwargs: Any) -> None:
        """Called on ``websocket.disconnect`` (``message["code"]`` is the close code)."""


class JsonWebsocketConsumer(WebsocketConsumer):
    """Frames are JSON: ``receive(content)`` gets the decoded value, ``send(content)`` encodes.

    A frame that is not valid JSON, or is binary, is refused politely: the connection is closed
    with 1007 (or 1003 for binary) and a warning is logged, no exception is raised. Override
    :meth:`reject_frame` to answer differently.
    """

    def raw_receive(self, message: Any, **kwargs: Any) -> None:
        text = message.get("text")
        if text is None:
            self.reject_frame("binary frame on a JSON connection", CLOSE_UNSUPPORTED_DATA)
            return
        try:
            content = self.decode_json(text)
        except ValueError as error:
            self.reject_frame(f"frame is not valid JSON ({error})", CLOSE_INVALID_PAYLOAD)
            return
        self.receive(content, **kwargs)

    def receive(self, content: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        """Called with each decoded JSON frame."""

    def send(self, content: Any = None, close: bool | int = False) -> None:  # type: ignore[override]
        """Send ``content`` as a JSON text frame (through the multiplexer when multiplexed)."""
        multiplexer = self.kwargs.get("multiplexer")
        if multiplexer is not None:
            multiplexer.send(content)
            if close:
                self.close(close)
            return
        super().send(text=self.encode_json(content), close=close)

    def reject_frame(self, reason: str, code: int) -> None:
        """Answer a frame that cannot be handled: log it and close the connection with ``code``."""
        reply = naming.loggable(self.message.reply_channel.name)
        logger.warning("closing WebSocket %s with %s: %s", reply, code, reason)
        self.close(code)

    @classmethod
    def decode_json(cls, text: str) -> Any:
        return json.loads(text)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)

    @classmethod
    def group_send(  # type: ignore[override]
        cls, name: str, content: Any = None, close: bool | int = False
    ) -> None:
        """Send ``content`` as JSON to every connection in group ``name``."""
        WebsocketConsumer.group_send(name, cls.encode_json(content), close=close)


class WebsocketMultiplexer:
    """Sends on one stream of a multiplexed connection; consumers get it as ``multiplexer``."""

    def __init__(self, stream: str, reply_channel: Any) -> None:
        self.stream = stream
        self.reply_channel = reply_channel

    def send(self, payload: Any) -> None:
        """Send ``payload`` on this stream: ``{"stream": ..., "payload": ...}``."""
        self.reply_channel.send(self.encode(self.stream, payload))

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)

    @classmethod
    def encode(cls, stream: str, payload: Any) -> dict[str, Any]:
        return {"text": cls.encode_json({"stream": stream, "payload": payload})}

    @classmethod
    def group_send(cls, name: str, stream: str, payload: Any, close: bool | int = False) -> None:
        """Send ``payload`` on ``stream`` to every connection in group ``name``."""
        message = cls.encode(stream, payload)
        if close:
            message["close"] = close
        channel_module.Group(name).send(message)


class WebsocketDemultiplexer(JsonWebsocketConsumer):
    """Several JSON consumers over one socket: frames are ``{"stream": s, "payload": {...}}``.

    ``consumers = {"stream": ConsumerClass}``; each frame goes to its stream's consumer with a
    ``multiplexer`` keyword argument to answer on the same stream. Connect and disconnect go to
    every stream's consumer. Frames without a known stream or with a non-object payload are refused
    like invalid JSON (see :meth:`JsonWebsocketConsumer.reject_frame`).
    """

    consumers: ClassVar[dict[str, Any]] = {}
    multiplexer_class: ClassVar[type[WebsocketMultiplexer]] = WebsocketMultiplexer

    def receive(self, content: Any = None, **kwargs: Any) -> None:  # type: ignore[override]
        if not isinstance(content, dict) or "stream" not in content or "payload" not in content:
            self.reject_frame("multiplexed frame without stream/payload", CLOSE_INVALID_PAYLOAD)
            return
        stream = content["stream"]
        consumer = self.consumers.get(stream) if isinstance(stream, str) else None
        if consumer is None:
            self.reject_frame(f"no consumer for stream {stream!r}", CLOSE_INVALID_PAYLOAD)
            return
        payload = content["payload"]
        if not isinstance(payload, dict):
            self.reject_frame("multiplexed payload is not an object", CLOSE_INVALID_PAYLOAD)
            return
        self.message.content["text"] = self.encode_json(payload)
        kwargs["multiplexer"] = self.multiplexer_class(stream, self.message.reply_channel)
        consumer(self.message, **kwargs)

    def connect(self, message: Any, **kwargs: Any) -> None:
        self.accept()
        self._forward(message, kwargs)

    def disconnect(self, message: Any, **kwargs: Any) -> None:
        self._forward(message, kwargs)

    def _forward(self, message: Any, kwargs: dict[str, Any]) -> None:
        for stream, consumer in self.consumers.items():
            multiplexer = self.multiplexer_class(stream, message.reply_channel)
            consumer(message, **{**kwargs, "multiplexer": multiplexer})

    def send(self, *args: Any, **kwargs: Any) -> None:
        raise exceptions.SendNotAvailableOnDemultiplexer(
            "a demultiplexer cannot send un-multiplexed frames; use the multiplexer kwarg's send()"
        )

    @classmethod
    def group_send(cls, *args: Any, **kwargs: Any) -> None:
        raise exceptions.SendNotAvailableOnDemultiplexer(
            "use WebsocketMultiplexer.group_send(group, stream, payload)"
        )
