"""Client frames read without autobahn's frame machinery (``client_frames``, issue 15's echo CPU)
arrive as before: whole, in order, mixed with frames autobahn still reads (fragments, pings,
64-bit lengths) in the same socket read; invalid UTF-8 still closes 1007."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import pytest

from channelworks_interface import client_frames
from tests.interface.conftest import InProcessInterface
from tests.interface.support import FakeWorker


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame, the length in the shortest form."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 0x10000:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 300, 0xFFFF])
def test_a_whole_frame_is_unmasked_byte_exact(size: int) -> None:
    payload = os.urandom(size)
    frame = _frame(2, payload) + b"rest"
    assert client_frames.next_message(frame, 0, client_frames.MAX_PAYLOAD) == (
        payload,
        True,
        len(frame) - 4,
    )
    assert client_frames.next_message(frame[:-5], 0, client_frames.MAX_PAYLOAD) is None  # cut


def test_what_autobahn_must_read_is_left_to_it() -> None:
    limit = client_frames.MAX_PAYLOAD
    left = [
        _frame(1, b"ab", fin=False),  # a fragment
        _frame(0, b"ab"),  # a continuation
        _frame(9, b"ping"),  # a control frame
        _frame(1, b"\xff\xfe"),  # not UTF-8
        _frame(2, b"x" * 0x10000),  # a 64-bit length
        bytes((0x81, 2)) + b"ab",  # not masked
        bytes((0xC1,)) + _frame(1, b"ab")[1:],  # RSV1 (compressed)
        struct.pack("!BBH", 0x81, 0x80 | 126, 5) + b"\0" * 9,  # not the shortest length
    ]
    for frame in left:
        assert client_frames.next_message(frame, 0, limit) is None, frame[:2]
    assert client_frames.next_message(_frame(1, b"x" * 200), 0, 199) is None  # over the limit
    assert client_frames.next_message(_frame(1, "é€".encode()), 0, limit) == (
        "é€".encode(),
        False,
        len(_frame(1, "é€".encode())),
    )


async def _open(
    inprocess: InProcessInterface, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = inprocess.server.http_port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        "".encode()
    )
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert status.startswith(b"HTTP/1.1 101"), status
    return reader, writer


async def _next_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await asyncio.wait_for(reader.readexactly(2), 10)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(size)


async def test_frames_of_every_kind_in_one_read_reach_the_worker_in_order(
    inprocess: InProcessInterface,
) -> None:
    path = "/frames/mixed"
    texts = ["a", "héllo €", "z" * 126, "0", "last"]
    data = os.urandom(300)
    big = os.urandom(0x10000)
    burst = b"".join(
        [
            _frame(1, texts[0].encode()),
            _frame(1, texts[1].encode()),
            _frame(2, data),  # a 16-bit length
            _frame(1, b"frag", fin=False),  # a fragmented message: autobahn's
            _frame(9, b"are you there"),  # a ping inside it: autobahn's
            _frame(0, b"mented"),
            _frame(1, texts[2].encode()),
            _frame(2, big),  # a 64-bit length: autobahn's
            _frame(1, texts[3].encode()),
            _frame(1, texts[4].encode()),
        ]
    )
    async with FakeWorker(inprocess.layer) as worker:
        reader, writer = await _open(inprocess, path)
        try:
            await worker.wait_for("websocket.connect", path=path)
            writer.write(burst)  # one write: whole frames of both kinds in the same reads
            received = await worker.wait_for("websocket.receive", count=8, path=path)
            frames = [await _next_frame(reader) for _ in range(9)]  # the pong and 8 echoes
        finally:
            writer.close()
    contents = [m.get("text", m.get("bytes")) for m in received]
    assert contents == [texts[0], texts[1], data, "fragmented", texts[2], big, texts[3], texts[4]]
    assert [m["order"] for m in received] == list(range(1, 9))
    assert (10, b"are you there") in frames  # the pong
    assert [payload for opcode, payload in frames if opcode != 10] == [
        texts[0].encode(),
        texts[1].encode(),
        data,
        b"fragmented",
        texts[2].encode(),
        big,
        texts[3].encode(),
        texts[4].encode(),
    ]


async def test_a_small_text_frame_that_is_not_utf8_still_closes_1007(
    inprocess: InProcessInterface,
) -> None:
    path = "/frames/not-utf8"
    async with FakeWorker(inprocess.layer) as worker:
        reader, writer = await _open(inprocess, path)
        try:
            await worker.wait_for("websocket.connect", path=path)
            writer.write(_frame(1, b"fine") + _frame(1, b"\xc3\x28"))
            opcode, payload = await _next_frame(reader)
            while opcode != 8:
                opcode, payload = await _next_frame(reader)
        finally:
            writer.close()
        await worker.wait_for("websocket.disconnect", path=path)
    assert struct.unpack("!H", payload[:2])[0] == 1007
    assert [m["text"] for m in worker.messages("websocket.receive", path)] == ["fine"]
