"""A client that never reads cannot make the interface hold its replies: once
``MAX_OUTPUT_BYTES`` wait behind its full socket (or it stays blocked for ``WRITE_TIMEOUT``) the
socket is closed 1008, its worker hears the code, and the interface's memory stays flat while
100 MiB are sent to it (before: all of it buffered until the ping timeout dropped the client).
A raw TCP client that does the WebSocket handshake and then reads nothing more; a real interface
process on a real Redis."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker, InterfaceProcess, PeakRss
from tests.support.processes import metric

PIECE = b"r" * 16384
MIB = 1024 * 1024


def _open_and_never_read(interface: InterfaceProcess, path: str) -> socket.socket:
    """A WebSocket client that reads the handshake's answer and nothing after it."""
    conn = socket.socket()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.connect(("127.0.0.1", interface.port))
    key = base64.b64encode(os.urandom(16))
    conn.sendall(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += conn.recv(1)  # byte by byte: not one byte of the first frames is taken
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return conn


def _log_lines(interface: InterfaceProcess) -> str:
    return "\n".join(
        line for line in interface.log().splitlines() if "dropped the oldest" not in line
    )


async def _flood(layer: RedisChannelLayer, reply_channel: str, total: int) -> None:
    """Send ``total`` bytes to the socket, 1 MiB at a time with a breath in between: a worker
    sending steadily, so what the interface holds is its own doing, not a backlog it pulls
    from Redis in one read."""
    for sent in range(total // len(PIECE)):
        await layer.send(reply_channel, {"bytes": PIECE})
        if sent % 64 == 63:
            await asyncio.sleep(0.01)


async def test_a_client_that_never_reads_is_closed_1008_and_memory_stays_flat(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface()
    async with FakeWorker(worker_layer) as worker:
        conn = await asyncio.to_thread(_open_and_never_read, interface, "/never-reads/")
        try:
            (connected,) = await worker.wait_for("websocket.connect", path="/never-reads/")
            rss = PeakRss(interface.process.pid)
            try:
                await _flood(worker_layer, connected["reply_channel"], 100 * MIB)
                (gone,) = await worker.wait_for(
                    "websocket.disconnect", path="/never-reads/", timeout=30
                )
                await asyncio.sleep(1)
            finally:
                growth = rss.stop() / MIB
                print(f"interface RSS grew {growth:.1f} MiB while 100 MiB went to a non-reader")
        finally:
            conn.close()
    assert gone["code"] == 1008, _log_lines(interface)
    assert growth < 30, growth
    text = interface.metrics()
    assert metric(text, "channelworks_interface_refusals_total", {"reason": "slow_reader"}) == 1


async def test_a_client_blocked_for_the_write_timeout_is_closed_1008(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface(
        CHANNELWORKS_INTERFACE_WRITE_TIMEOUT="1",
        CHANNELWORKS_INTERFACE_MAX_OUTPUT_BYTES=str(512 * MIB),
    )
    async with FakeWorker(worker_layer) as worker:
        conn = await asyncio.to_thread(_open_and_never_read, interface, "/stuck/")
        try:
            (connected,) = await worker.wait_for("websocket.connect", path="/stuck/")
            started = time.monotonic()
            await _flood(worker_layer, connected["reply_channel"], 12 * MIB)  # fills the buffers
            (gone,) = await worker.wait_for("websocket.disconnect", path="/stuck/", timeout=15)
            waited = time.monotonic() - started
        finally:
            conn.close()
    assert gone["code"] == 1008
    assert waited < 10, waited
