"""The wire format between ``LocalChannelLayer`` clients and the local broker.

Every frame is a 4-byte big-endian length followed by one msgpack array.

- request: ``[request_id, op, *args]``; ``request_id`` 0 means "no reply wanted".
- reply: ``[request_id, status, value]`` with status ``OK``, ``ERROR`` (value ``[kind, detail]``)
  or ``CANCELLED`` (a blocking request the client gave up on).

The first request on a connection is ``hello``; the broker answers with its process id, or with an
``ERROR`` when the protocol versions differ.

This module imports only the standard library and msgpack: the broker process stays light.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 256 * 1024 * 1024
NO_REPLY = 0
OK = 0
ERROR = 1
CANCELLED = 2
BLOCKING_OPS = frozenset({"recv", "work"})

_HEADER = struct.Struct("!I")


class ProtocolError(Exception):
    """A peer sent something that is not a frame of this protocol."""


def pack_frame(frame: list[Any]) -> bytes:
    body: bytes = msgpack.packb(frame, use_bin_type=True)
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> list[Any]:
    """The next frame; ``asyncio.IncompleteReadError`` when the peer closed the connection."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {size} bytes is over the limit of {MAX_FRAME_BYTES}")
    body = await reader.readexactly(size)
    try:
        frame = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, TypeError) as error:
        raise ProtocolError(f"undecodable frame: {error}") from error
    if not isinstance(frame, list) or not frame or not isinstance(frame[0], int):
        raise ProtocolError("a frame must be an array that starts with a request id")
    return frame
