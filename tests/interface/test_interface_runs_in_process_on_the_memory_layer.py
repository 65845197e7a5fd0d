"""The forwarding application under a real Daphne server in this process, on the in-memory layer,
with the worker in the test's event loop (the shape ``channelworks dev`` runs in)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.interface.conftest import InProcessInterface
from tests.interface.support import FakeWorker
from tests.support.eventually import eventually_async


async def test_a_websocket_round_trip_through_the_memory_layer(
    inprocess: InProcessInterface,
) -> None:
    opened = inprocess.sample("channelworks_interface_handshake_duration_seconds_count")
    async with FakeWorker(inprocess.layer) as worker:
        async with connect(inprocess.ws_url("/echo/?x=1"), subprotocols=[Subprotocol("p1")]) as ws:
            assert ws.subprotocol == "p1"
            await ws.send("ping")
            assert await ws.recv() == "ping"
            assert inprocess.sample("channelworks_interface_connections") == 1
            await ws.send("close 4000")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
        (connected,) = await worker.wait_for("websocket.connect", path="/echo/")
        await worker.wait_for("websocket.disconnect", path="/echo/")
    assert connected["query_string"] == b"x=1"

    async def settled() -> None:
        assert inprocess.sample("channelworks_interface_connections") == 0
        count = inprocess.sample("channelworks_interface_handshake_duration_seconds_count")
        assert count == opened + 1

    await eventually_async(settled)


async def test_http_streams_through_the_memory_layer(inprocess: InProcessInterface) -> None:
    async def stream(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        await worker.reply(message, {"status": 200, "content": b"a", "more_content": True})
        await worker.reply(message, {"content": b"b", "more_content": True})
        await worker.reply(message, {"content": b"c"})

    async with FakeWorker(inprocess.layer, stream), httpx.AsyncClient() as client:
        response = await client.get(f"{inprocess.base_url}/stream")
    assert response.status_code == 200 and response.content == b"abc"


async def test_timeouts_and_a_full_channel_answer_for_themselves(
    inprocess: InProcessInterface,
) -> None:
    before_504 = inprocess.sample("channelworks_interface_http_requests_total", {"code": "504"})
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{inprocess.base_url}/nobody")).status_code == 504
        await inprocess.layer.flush()
        for n in range(5):  # the capacity of http.request is 5 here
            await inprocess.layer.send("http.request", {"filler": n})
        assert (await client.get(f"{inprocess.base_url}/full")).status_code == 503
    after_504 = inprocess.sample("channelworks_interface_http_requests_total", {"code": "504"})
    assert after_504 == before_504 + 1
    refused = {"protocol": "http", "reason": "channel_full"}
    assert inprocess.sample("channelworks_interface_refusals_total", refused) >= 1


async def test_many_sockets_at_once_each_get_their_own_replies(
    inprocess: InProcessInterface,
) -> None:
    async def one(n: int) -> str:
        async with connect(inprocess.ws_url(f"/n/{n}")) as ws:
            await ws.send(f"message {n}")
            reply = await ws.recv()
            assert isinstance(reply, str)
            return reply

    async with FakeWorker(inprocess.layer), asyncio.timeout(60):
        replies = await asyncio.gather(*(one(n) for n in range(50)))
    assert replies == [f"message {n}" for n in range(50)]
