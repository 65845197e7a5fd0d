"""Translating between ASGI events (Daphne's side) and Channels-1 messages (the layer's side).

Pure functions, no I/O. Channels-1 field names and types are those of the ASGI 1 "www" spec that
Channels 1 used: ``path`` is text, ``query_string``/``headers``/``body`` are bytes, ``client`` and
``server`` are ``[host, port]``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]
Event = dict[str, Any]
Scope = Mapping[str, Any]


# RFC 6455 7.4 and the IANA registry: 1004-1006 and 1015 are never sent, 1010 only by clients.
_SERVER_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 1014})


class InvalidReply(ValueError):
    """A worker's reply does not follow the Channels-1 message format."""


def _address(value: Any) -> list[Any] | None:
    return None if value is None else [str(value[0]), int(value[1])]


def _headers(scope: Scope) -> list[list[bytes]]:
    return [[bytes(name), bytes(value)] for name, value in scope.get("headers", [])]


def websocket_connect(scope: Scope, reply_channel: str, scheme: str) -> Message:
    return {
        "reply_channel": reply_channel,
        "scheme": scheme,
        "path": scope["path"],
        "root_path": scope.get("root_path", ""),
        "query_string": bytes(scope.get("query_string", b"")),
        "headers": _headers(scope),
        "client": _address(scope.get("client")),
        "server": _address(scope.get("server")),
        "subprotocols": list(scope.get("subprotocols", [])),
        "order": 0,
    }


def websocket_receive(scope: Scope, reply_channel: str, order: int, event: Event) -> Message:
    message: Message = {"reply_channel": reply_channel, "path": scope["path"], "order": order}
    if event.get("bytes") is not None:
        message["bytes"] = event["bytes"]
    else:
        message["text"] = event.get("text") or ""
    return message


def websocket_disconnect(scope: Scope, reply_channel: str, order: int, code: int) -> Message:
    return {"reply_channel": reply_channel, "path": scope["path"], "order": order, "code": code}


def http_request(scope: Scope, reply_channel: str, body: bytes) -> Message:
    return {
        "reply_channel": reply_channel,
        "http_version": scope.get("http_version", "1.1"),
        "method": scope["method"],
        "scheme": scope.get("scheme", "http"),
        "path": scope["path"],
        "root_path": scope.get("root_path", ""),
        "query_string": bytes(scope.get("query_string", b"")),
        "headers": _headers(scope),
        "body": body,
        "client": _address(scope.get("client")),
        "server": _address(scope.get("server")),
    }


@dataclass
class WebSocketReply:
    """What one reply asks of a socket, in the order Channels 1 applied it."""

    accept: bool | None = None  # True accept, False refuse, None: no say
    subprotocol: str | None = None
    frames: list[Event] = field(default_factory=list)  # websocket.send events
    close: int | None = None  # a close code, when the reply closes the socket


def content_only_frame(reply: Mapping[str, Any]) -> Event | None:
    """The ``websocket.send`` event of a reply that carries nothing but ``text`` (str) or
    ``bytes`` (bytes), the common case; None for any other reply (read it with
    :func:`websocket_reply`)."""
    if len(reply) != 1:
        return None
    text = reply.get("text")
    if type(text) is str:
        return {"type": "websocket.send", "text": text}
    data = reply.get("bytes")
    if type(data) is bytes:
        return {"type": "websocket.send", "bytes": data}
    return None


_FIN_TEXT = 0x81  # RFC 6455 5.2: FIN set, opcode 1 (text)
_FIN_BINARY = 0x82  # FIN set, opcode 2 (binary)


def server_frame(data: bytes, binary: bool) -> bytes:
    """One unfragmented, unmasked, uncompressed data frame (RFC 6455 5.2), as a server sends it:
    the bytes autobahn writes for ``sendMessage(data, binary)`` without extensions."""
    first = _FIN_BINARY if binary else _FIN_TEXT
    size = len(data)
    if size < 126:
        header = bytes((first, size))
    elif size < 0x10000:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + data


def websocket_reply(reply: Mapping[str, Any], offered: list[str]) -> WebSocketReply:
    """Read ``{accept?, subprotocol?, bytes?, text?, close?}``; raise InvalidReply if malformed.

    As in Channels 1: ``accept`` first, then ``bytes``, then ``text``, then ``close`` (``True`` is
    code 1000); content or ``close`` on a socket not accepted yet act as accept / refuse.
    """
    result = WebSocketReply()
    if "accept" in reply:
        result.accept = bool(reply["accept"])
    subprotocol = reply.get("subprotocol")
    if subprotocol is not None:
        if not isinstance(subprotocol, str) or subprotocol not in offered:
            raise InvalidReply(
                f"subprotocol {subprotocol!r} was not offered by the client (offered: {offered})"
            )
        result.subprotocol = subprotocol
    data = reply.get("bytes")
    if data is not None:
        if not isinstance(data, bytes | bytearray):
            raise InvalidReply(f"'bytes' must be bytes, got {type(data).__name__}")
        result.frames.append({"type": "websocket.send", "bytes": bytes(data)})
    text = reply.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise InvalidReply(f"'text' must be str, got {type(text).__name__}")
        result.frames.append({"type": "websocket.send", "text": text})
    close = reply.get("close", False)
    if close is True:
        result.close = 1000
    elif isinstance(close, int) and not isinstance(close, bool) and close:
        if not (close in _SERVER_CLOSE_CODES or 3000 <= close <= 4999):
            raise InvalidReply(
                f"close code {close} is not one a server may send (1000-1003, 1007-1009, "
                "1011-1014, 3000-4999)"
            )
        result.close = close
    elif close not in (False, None, 0):
        raise InvalidReply(f"'close' must be true or a close code, got {close!r}")
    return result


def _header_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidReply(f"{what} {value!r} is not latin-1 text") from None
    raise InvalidReply(f"{what} must be bytes or str, got {type(value).__name__}")


def http_response_start(reply: Mapping[str, Any]) -> Event:
    """``http.response.start`` from the first reply ``{status, headers, ...}``."""
    status = reply.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
        raise InvalidReply(f"the first HTTP reply needs an integer 'status', got {status!r}")
    headers = []
    for pair in reply.get("headers") or []:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise InvalidReply(f"a header must be a [name, value] pair, got {pair!r}")
        headers.append(
            (_header_bytes(pair[0], "header name").lower(), _header_bytes(pair[1], "header value"))
        )
    return {"type": "http.response.start", "status": status, "headers": headers}


def http_response_body(reply: Mapping[str, Any]) -> Event:
    """``http.response.body`` from a reply's ``content`` and ``more_content``."""
    content = reply.get("content", b"")
    if content is None:
        content = b""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not isinstance(content, bytes | bytearray):
        raise InvalidReply(f"'content' must be bytes, got {type(content).__name__}")
    return {
        "type": "http.response.body",
        "body": bytes(content),
        "more_body": bool(reply.get("more_content", False)),
    }


def plain_response(status: int, text: str) -> tuple[Event, Event]:
    """A short text/plain answer the interface gives itself (504, 503, 413, 502...)."""
    body = (text.rstrip("\n") + "\n").encode("utf-8")
    return (
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        },
        {"type": "http.response.body", "body": body, "more_body": False},
    )
