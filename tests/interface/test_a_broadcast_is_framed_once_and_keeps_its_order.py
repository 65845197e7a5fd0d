"""A group message reaches the sockets of an interface as one prepared frame written to each
(issue 15): the frame bytes must be exactly what a WebSocket client expects, whatever the size,
whether or not the client offers compression (as browsers do), and never overtake the replies
before them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from channelworks.layers import RedisChannelLayer
from tests.interface.support import FakeWorker, InterfaceProcess

GROUP = "listeners"
# Around each length encoding of RFC 6455 5.2: 7 bits, 16 bits, 64 bits.
SIZES = (1, 125, 126, 65535, 65536, 70000)


async def _join(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
    if channel == "websocket.connect":
        await worker.layer.group_add(GROUP, message["reply_channel"])
        await worker.reply(message, {"accept": True})


async def _raw_client(
    interface: InterfaceProcess, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-made client without extensions, reading frames byte for byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", interface.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert status.startswith(b"HTTP/1.1 101"), status
    return reader, writer  # the writer is kept: dropping it would close the connection


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(first header byte, payload) of one unmasked frame, checking its length encoding."""
    first, second = await asyncio.wait_for(reader.readexactly(2), 10)
    assert not second & 0x80, "a server's frame is never masked"
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        assert size >= 126, "the shortest length encoding is used"
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
        assert size >= 0x10000, "the shortest length encoding is used"
    return first, await reader.readexactly(size)


async def test_every_size_arrives_whole_whether_or_not_the_client_offers_compression(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer, _join) as worker, contextlib.AsyncExitStack() as stack:
        plain = await stack.enter_async_context(connect(interface.ws_url("/b/0"), compression=None))
        # websockets offers permessage-deflate unless told not to.
        deflate = await stack.enter_async_context(connect(interface.ws_url("/b/1")))
        raw, raw_writer = await _raw_client(interface, "/b/2")
        stack.callback(raw_writer.close)
        for n in range(3):
            await worker.wait_for("websocket.connect", path=f"/b/{n}")
        sent: list[str | bytes] = []
        for size in SIZES:
            sent += ["t" * size, bytes(range(256)) * (size // 256) + b"\xff" * (size % 256)]
        for content in sent:
            key = "bytes" if isinstance(content, bytes) else "text"
            await worker_layer.group_send(GROUP, {key: content})

        async def read_all(ws: ClientConnection) -> list[str | bytes]:
            return [await asyncio.wait_for(ws.recv(), 10) for _ in sent]

        async def read_raw() -> list[tuple[int, bytes]]:
            out = []
            for _ in sent:
                out.append(await _read_frame(raw))
                print("raw", len(out), out[-1][0], len(out[-1][1]))
            return out

        # All read at once: a socket left unread this long would be cut off as a slow reader.
        got_plain, got_deflate, got_raw = await asyncio.gather(
            read_all(plain), read_all(deflate), read_raw()
        )
    assert got_plain == sent
    assert got_deflate == sent
    # FIN set, opcode text (0x81) or binary (0x82), the payload as sent.
    assert got_raw == [
        (0x82, c) if isinstance(c, bytes) else (0x81, c.encode("utf-8")) for c in sent
    ]


async def test_plain_frames_never_overtake_the_replies_the_bridge_applies(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    """Plain frames (written straight to the socket) and replies that the socket's bridge
    applies itself (``{"text": ..., "close": False}`` is not a plain frame) alternate, sent one
    after the other as fast as the layer takes them: each socket gets them all, in order."""
    async with FakeWorker(worker_layer, _join) as worker, contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(connect(interface.ws_url(f"/o/{n}"), compression=None))
            for n in range(5)
        ]
        for n in range(5):
            await worker.wait_for("websocket.connect", path=f"/o/{n}")
        # Fewer than a reply channel's capacity (100): a busy interface may read them all in one
        # batch, and a channel queues what its bridge has not applied yet.
        expected = [f"m{i}" for i in range(90)]
        for i, text in enumerate(expected):
            reply = {"text": text} if i % 3 else {"text": text, "close": False}
            await worker_layer.group_send(GROUP, reply)

        async def read_all(ws: ClientConnection) -> list[str | bytes]:
            return [await asyncio.wait_for(ws.recv(), 10) for _ in expected]

        received = await asyncio.gather(*(read_all(ws) for ws in sockets))
    assert received == [expected] * 5
