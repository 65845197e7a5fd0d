"""The recovery protocol between the interface and a client that speaks it (the shipped JS
client, ``channels/js/websocketbridge.js``): what the client asks in its URL, what control frames
it gets. Pure functions, no I/O; docs/delivery.md describes the protocol.

The client asks with one query parameter, ``cw``: base64url of a JSON object
``{"v": 1, "t": <resume token or null>, "s": {<group>: [<epoch>, <offset>], ...}}``; the
interface takes it out of the query string before the worker sees the connection.

Frames to such a client are JSON text with a ``"$cw"`` key:

- ``{"$cw": "session", "t": <token or null>, "resumed": <bool>}`` once the socket is open;
- ``{"$cw": "m", "s": <group>, "e": <epoch>, "o": <offset>, "text": <the frame>}``: a text
  frame of a group with history; a bytes frame comes as ``{"$cw": "at", ...}`` followed by it;
- ``{"$cw": "recovered", "s": <group>, "o": <offset>, "n": <messages sent>}``: what was missed
  has been sent, live messages follow;
- ``{"$cw": "gone", "s": <group>, "e": <epoch>, "o": <offset>}``: what was missed is no longer
  kept; the page should reload its state (live messages follow from ``o``).
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

PARAMETER = b"cw"
MAX_STREAMS = 100
Event = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """What a recovering client asked for when it connected."""

    token: str | None = None
    positions: dict[str, tuple[str, int]] = field(default_factory=dict)


def take_request(query_string: bytes) -> tuple[Request | None, bytes]:
    """The client's request (None: a client that does not speak the protocol, or one whose
    request cannot be read, which is then served as such) and the query string without it."""
    kept: list[tuple[bytes, bytes]] = []
    found: bytes | None = None
    for pair in query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == PARAMETER and found is None:
            found = value
        elif pair:
            kept.append((name, value))
    rest = b"&".join(name + b"=" + value if value else name for name, value in kept)
    if found is None:
        return None, query_string
    return _parse(urllib.parse.unquote_to_bytes(found)), rest


def _parse(raw: bytes) -> Request | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        return Request()  # it speaks the protocol but sent nothing usable: a fresh start
    if not isinstance(decoded, dict):
        return Request()
    token = decoded.get("t")
    positions: dict[str, tuple[str, int]] = {}
    streams = decoded.get("s")
    if isinstance(streams, dict):
        for group, value in list(streams.items())[:MAX_STREAMS]:
            if (
                isinstance(group, str)
                and isinstance(value, list)
                and len(value) == 2
                and isinstance(value[0], str)
                and isinstance(value[1], int)
                and not isinstance(value[1], bool)
                and value[1] >= 0
            ):
                positions[group] = (value[0], value[1])
    valid_token = isinstance(token, str) and 0 < len(token) <= 64 and token.isalnum()
    return Request(token if valid_token else None, positions)


def encode_request(request: Request) -> str:
    """The ``cw`` parameter's value for ``request`` (what the clients build)."""
    body = {"v": 1, "t": request.token, "s": {g: [e, o] for g, (e, o) in request.positions.items()}}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def _text(content: dict[str, Any]) -> Event:
    return {"type": "websocket.send", "text": json.dumps(content, separators=(",", ":"))}


def session(token: str | None, resumed: bool) -> Event:
    return _text({"$cw": "session", "t": token, "resumed": resumed})


def positioned(group: str, epoch: str, offset: int, reply: dict[str, Any]) -> list[Event]:
    """The frames that carry one message of a stream (its ``text`` or ``bytes``)."""
    where = {"s": group, "e": epoch, "o": offset}
    text = reply.get("text")
    if isinstance(text, str):
        return [_text({"$cw": "m", **where, "text": text})]
    data = reply.get("bytes")
    if isinstance(data, bytes | bytearray):
        return [_text({"$cw": "at", **where}), {"type": "websocket.send", "bytes": bytes(data)}]
    return []


def recovered(group: str, offset: int, count: int) -> Event:
    return _text({"$cw": "recovered", "s": group, "o": offset, "n": count})


def gone(group: str, epoch: str, offset: int) -> Event:
    return _text({"$cw": "gone", "s": group, "e": epoch, "o": offset})
