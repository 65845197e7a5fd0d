"""A real client, a real interface process, a real Redis, and a worker speaking Channels 1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker, InterfaceProcess, echo


async def test_connect_receive_disconnect_carry_the_channels_1_fields(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:

    async with FakeWorker(worker_layer) as worker:
        async with connect(
            interface.ws_url("/chat/room1/?user=ann"), additional_headers={"Cookie": "a=b"}
        ) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"
            await ws.close(code=4001)
        room = "/chat/room1/"
        (connected,) = await worker.wait_for("websocket.connect", path=room)
        received = await worker.wait_for("websocket.receive", 2, path=room)
        (disconnected,) = await worker.wait_for("websocket.disconnect", path=room)

    reply_channel = connected["reply_channel"]
    assert reply_channel.startswith("specific.") and "!" in reply_channel
    assert connected["path"] == "/chat/room1/"
    assert connected["query_string"] == b"user=ann"
    assert connected["scheme"] == "ws"
    assert connected["order"] == 0
    assert connected["client"][0] == "127.0.0.1"
    assert connected["server"] == ["127.0.0.1", interface.port]
    assert [b"cookie", b"a=b"] in connected["headers"]
    assert connected["subprotocols"] == []
    assert [(m["order"], m.get("text"), m.get("bytes")) for m in received] == [
        (1, "hello", None),
        (2, None, b"\x00\x01binary"),
    ]
    assert all(m["reply_channel"] == reply_channel for m in received)
    assert disconnected == {
        "reply_channel": reply_channel,
        "path": "/chat/room1/",
        "order": 3,
        "code": 4001,
    }


async def test_worker_refusal_is_a_403_and_the_worker_hears_the_disconnect(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async def refuse(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.connect":
            await worker.reply(message, {"accept": False})

    async with FakeWorker(worker_layer, refuse) as worker:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(interface.ws_url("/private/")):
                pass
        assert refused.value.response.status_code == 403
        (disconnected,) = await worker.wait_for("websocket.disconnect", path="/private/")
        assert disconnected["order"] == 1


async def test_close_true_before_accept_refuses_too(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async def close(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.connect":
            await worker.reply(message, {"close": True})

    async with FakeWorker(worker_layer, close):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(interface.ws_url("/")):
                pass
        assert refused.value.response.status_code == 403


async def test_text_before_accept_accepts_as_in_channels_1(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async def greet(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.connect":
            await worker.reply(message, {"text": "welcome"})

    async with FakeWorker(worker_layer, greet), connect(interface.ws_url("/")) as ws:
        assert await ws.recv() == "welcome"


async def test_worker_closes_with_its_code_and_a_group_reaches_every_socket(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async def join(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.connect":
            await worker.layer.group_add("room", message["reply_channel"])
        await echo(worker, channel, message)

    async with (
        FakeWorker(worker_layer, join) as worker,
        connect(interface.ws_url("/a/")) as first,
        connect(interface.ws_url("/b/")) as second,
    ):
        await worker.wait_for("websocket.connect", path="/a/")
        await worker.wait_for("websocket.connect", path="/b/")
        await worker_layer.group_send("room", {"text": "to everyone"})
        assert await first.recv() == "to everyone"
        assert await second.recv() == "to everyone"
        await first.send("close 4321")
        with pytest.raises(ConnectionClosed) as closed:
            await first.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4321
        await worker_layer.group_send("room", {"close": True})
        with pytest.raises(ConnectionClosed) as closed_too:
            await second.recv()
        assert closed_too.value.rcvd is not None and closed_too.value.rcvd.code == 1000


async def test_the_worker_picks_one_of_the_offered_subprotocols(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async def pick_second(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.connect":
            await worker.reply(message, {"accept": True, "subprotocol": message["subprotocols"][1]})

    async with FakeWorker(worker_layer, pick_second) as worker:
        offered = [Subprotocol("v1.chat"), Subprotocol("v2.chat")]
        async with connect(interface.ws_url("/sub/"), subprotocols=offered) as ws:
            assert ws.subprotocol == "v2.chat"
        (connected,) = await worker.wait_for("websocket.connect", path="/sub/")
        assert connected["subprotocols"] == ["v1.chat", "v2.chat"]


async def test_one_group_send_reaches_sockets_on_two_interface_processes(
    interface: InterfaceProcess,
    start_interface: StartInterface,
    worker_layer: RedisChannelLayer,
) -> None:
    async def join(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.connect":
            await worker.layer.group_add("everyone", message["reply_channel"])
            await worker.reply(message, {"accept": True})

    other = start_interface()
    urls = [interface.ws_url(f"/two/{n}") for n in range(3)]
    urls += [other.ws_url(f"/two/{n}") for n in range(3, 6)]
    async with FakeWorker(worker_layer, join) as worker, contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(connect(url)) for url in urls]
        for n in range(6):
            await worker.wait_for("websocket.connect", path=f"/two/{n}")
        await worker_layer.group_send("everyone", {"text": "news"})
        received = await asyncio.wait_for(asyncio.gather(*(ws.recv() for ws in sockets)), 10)
    assert received == ["news"] * 6
    connects = worker.messages("websocket.connect")
    heads = {m["reply_channel"].split("!")[0] for m in connects if m["path"].startswith("/two/")}
    assert len(heads) == 2  # each process has its own inbox


async def _open_raw_socket(
    interface: InterfaceProcess, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-made WebSocket client, so that it can leave a close frame unanswered: it opens
    ``path`` and sends one masked text frame, ``bye``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", interface.port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{interface.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    mask, payload = os.urandom(4), b"bye"
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return reader, writer


async def test_a_client_that_drops_instead_of_answering_our_close_is_reported_with_our_code(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async def close_on_bye(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.receive":
            await worker.reply(message, {"close": 4002})
        else:
            await echo(worker, channel, message)

    async with FakeWorker(worker_layer, close_on_bye) as worker:
        reader, writer = await _open_raw_socket(interface, "/dropper/")
        header = await asyncio.wait_for(reader.readexactly(2), 10)
        assert header[0] == 0x88  # a close frame, from the interface
        body = await reader.readexactly(header[1] & 0x7F)
        assert int.from_bytes(body[:2], "big") == 4002
        writer.transport.abort()  # no close frame back: the connection just ends
        (disconnected,) = await worker.wait_for("websocket.disconnect", path="/dropper/")
    assert disconnected["code"] == 4002
