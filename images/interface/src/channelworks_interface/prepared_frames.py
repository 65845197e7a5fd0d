"""A message for many sockets, decoded once and framed once.

A group message reaches every member socket of this process as the same encoded bytes (one inbox
entry names them all). :class:`PreparedFrames` turns those bytes into the WebSocket frame every
member gets: decoded once, checked once (only a reply of nothing but ``text`` or ``bytes`` becomes
a frame; anything else is left to the socket's own bridge), framed once. Daphne's protocol writes
the same frame bytes to each socket (``daphne_glue.WebSocketProtocol.write_prepared_frame``),
reached through the scope extension :data:`FRAME_WRITER_EXTENSION`.
"""

from __future__ import annotations

from collections.abc import Callable

from channelworks.layers import codec
from channelworks_interface import messages

# scope["extensions"][FRAME_WRITER_EXTENSION]: write one prepared frame to this socket; False
# when it cannot (not open, compression negotiated): the frame must then go through Daphne.
FRAME_WRITER_EXTENSION = "channelworks.frame_writer"
FrameWriter = Callable[[bytes], bool]


class PreparedFrames:
    """The frame of the last encoded message asked for (by identity: every member of a group
    send shares one bytes object), or None when that message is not a plain frame."""

    __slots__ = ("_frame", "_payload")

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._frame: bytes | None = None

    def frame_of(self, payload: bytes) -> bytes | None:
        if payload is not self._payload:
            self._frame = _frame(payload)
            self._payload = payload  # held, so no other object can take its identity
        return self._frame


def _frame(payload: bytes) -> bytes | None:
    try:
        reply = codec.decode(payload)
    except Exception:
        return None  # the socket's bridge decodes it again and reports it
    if not isinstance(reply, dict):
        return None
    event = messages.content_only_frame(reply)
    if event is None:
        return None
    text = event.get("text")
    if text is not None:
        # Daphne sends nothing for an empty frame; neither does this path (the bridge's does).
        return messages.server_frame(text.encode("utf-8"), binary=False) if text else None
    data: bytes = event["bytes"]
    return messages.server_frame(data, binary=True) if data else None
