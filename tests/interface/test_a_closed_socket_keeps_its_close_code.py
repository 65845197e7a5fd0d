"""A socket the interface closes keeps its close code, even when the client goes on sending and
does not read for a while (a flood over the message rate, or a busy client): the interface sends
its close frame, then ends the connection with a half-close and reads what still comes, instead
of the reset autobahn ends every server-closed connection with (at the client's close reply, or
1 s after the close frame when none came). After a reset the client's next write fails, and
WebSocket libraries then give up without reading the close frame waiting in their socket: the
client saw 1006 instead of 1008 (a real interface process, a raw TCP client)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker

FLOOD = 500  # frames at once: far over the default burst, so the interface closes with 1008
KEEP_SENDING = 1.6  # seconds of one frame per 50 ms after the flood: past autobahn's 1 s timeout


def _frame(text: str) -> bytes:
    """A masked client text frame (payload under 126 bytes)."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[n % 4] for n, byte in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


def _close_code(received: bytes) -> int | None:
    """The code of the first close frame in the server's (unmasked) frames."""
    at = 0
    while at + 2 <= len(received):
        opcode, length = received[at] & 0x0F, received[at + 1] & 0x7F
        at += 2
        if length == 126:
            (length,) = struct.unpack("!H", received[at : at + 2])
            at += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", received[at : at + 8])
            at += 8
        if opcode == 0x8:
            return int(struct.unpack("!H", received[at : at + 2])[0])
        at += length
    return None


def _flood_then_read(port: int) -> tuple[str, bytes]:
    """Open a socket, flood it, keep sending without reading, then read to the end: how the
    sending ended ("sent all" or the error) and every byte the server sent after the handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /flood/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        received = head.split(b"\r\n\r\n", 1)[1]
        sending = "sent all"
        try:
            sock.sendall(b"".join(_frame(f"flood {n}") for n in range(FLOOD)))
            until = time.monotonic() + KEEP_SENDING
            while time.monotonic() < until:
                sock.sendall(_frame("still here"))
                time.sleep(0.05)
        except OSError as error:
            sending = repr(error)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError as error:
            return f"{sending}; reading: {error!r}", received
        return sending, received


async def test_a_client_still_sending_finds_the_close_code_and_an_orderly_end(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface()
    async with FakeWorker(worker_layer):
        sending, received = await asyncio.to_thread(_flood_then_read, interface.port)
    print(f"client: {sending}; close code {_close_code(received)}")
    assert sending == "sent all"  # no write refused by a reset
    assert _close_code(received) == 1008
