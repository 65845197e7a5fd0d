"""Reading the common client frame without autobahn's frame machinery: pure functions, no I/O.

A client's message is nearly always one complete, masked, unfragmented text or binary frame
(RFC 6455 5.2), and a read from the socket nearly always holds whole frames. autobahn parses
each such frame through a dozen Python calls (frame header object, masker object, per-frame and
per-message hooks, incremental UTF-8 validation): about a quarter of the interface's CPU under
an echo load. :func:`next_message` reads such a frame in one step; for anything else (a control
frame, a fragment, RSV bits, an unmasked frame, a 64-bit length, a payload over the limit, text
that is not UTF-8, an incomplete frame) it returns None and autobahn reads the data, with every
check and error answer it has.
"""

from __future__ import annotations

_FIN_TEXT = 0x81  # FIN, RSV 0, opcode 1
_FIN_BINARY = 0x82  # FIN, RSV 0, opcode 2
_MASKED = 0x80
_LENGTH_16 = 126  # the 7-bit length that announces a 16-bit one
MAX_PAYLOAD = 0xFFFF  # frames with a 16-bit length at most; longer ones are autobahn's


def next_message(data: bytes, start: int, limit: int) -> tuple[bytes, bool, int] | None:
    """The message of the frame at ``data[start:]`` as ``(payload, is_binary, end)`` when it is
    a complete, final, masked text (valid UTF-8) or binary frame of at most ``limit`` payload
    bytes without RSV bits; ``end`` is where the frame ends. None for anything else."""
    available = len(data) - start
    if available < 6:
        return None
    first = data[start]
    if first != _FIN_TEXT and first != _FIN_BINARY:
        return None
    second = data[start + 1]
    if not second & _MASKED:
        return None
    size = second & 0x7F
    head = start + 2
    if size == _LENGTH_16:
        if available < 8:
            return None
        size = (data[head] << 8) | data[head + 1]
        if size < _LENGTH_16:
            return None  # not the minimal length encoding: autobahn fails it
        head += 2
    elif size > _LENGTH_16:
        return None
    if size > limit:
        return None
    body = head + 4
    end = body + size
    if end > len(data):
        return None
    payload = unmask(data[body:end], data[head:body])
    binary = first == _FIN_BINARY
    if not binary and not payload.isascii():
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            return None  # autobahn fails the connection with 1007
    return payload, binary, end


def unmask(masked: bytes, mask: bytes) -> bytes:
    """XOR ``masked`` with the 4-byte ``mask`` repeated (RFC 6455 5.3), as one integer XOR."""
    size = len(masked)
    key = (mask * (size // 4 + 1))[:size]
    value = int.from_bytes(masked, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(size, "little")
