"""When the interface cannot or must not forward, the client gets a clear answer, not a hang."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker, InterfaceProcess


@pytest.fixture(scope="module")
def interface_env() -> dict[str, str]:
    return {
        "CHANNELWORKS_INTERFACE_HTTP_TIMEOUT": "3",
        "CHANNELWORKS_INTERFACE_CONNECT_TIMEOUT": "3",
        "CHANNELWORKS_INTERFACE_MAX_MESSAGE_BYTES": "1000",
        "CHANNELWORKS_INTERFACE_MAX_BODY_BYTES": "1000",
    }


async def _close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; the code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(20):
            while True:
                await ws.recv()
    return None if closed.value.rcvd is None else closed.value.rcvd.code


async def test_no_worker_reply_in_time_is_a_504(interface: InterfaceProcess) -> None:
    async with httpx.AsyncClient() as client:
        started = time.monotonic()
        response = await client.get(f"{interface.base_url}/slow")
    assert response.status_code == 504
    assert 2.9 < time.monotonic() - started < 8


async def test_no_answer_to_a_websocket_connect_in_time_closes_1013(
    interface: InterfaceProcess,
) -> None:
    async with connect(interface.ws_url("/nobody/")) as ws:
        assert await _close_code(ws) == 1013


async def test_a_frame_over_the_limit_closes_1009_and_the_worker_hears_it(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer) as worker, connect(interface.ws_url("/big/")) as ws:
        await ws.send("x" * 900)
        assert await ws.recv() == "x" * 900
        await ws.send("y" * 2000)
        assert await _close_code(ws) == 1009
        (disconnected,) = await worker.wait_for("websocket.disconnect", path="/big/")
    assert [m["text"] for m in worker.messages("websocket.receive", "/big/")] == ["x" * 900]
    assert disconnected["order"] == 2


async def test_a_body_over_the_limit_is_a_413(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer) as worker, httpx.AsyncClient() as client:
        response = await client.post(f"{interface.base_url}/upload", content=b"z" * 5000)
        small = await client.post(f"{interface.base_url}/upload", content=b"z" * 500)
    assert response.status_code == 413
    assert small.status_code == 200
    assert len(worker.messages("http.request", "/upload")) == 1


async def test_a_foreign_origin_is_refused_with_403_before_any_worker_hears_of_it(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer) as worker:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(interface.ws_url("/o/"), origin=Origin("https://evil.example")):
                pass
        assert refused.value.response.status_code == 403
        own = Origin(f"http://127.0.0.1:{interface.port}")
        async with connect(interface.ws_url("/o/"), origin=own) as ws:
            await ws.send("same host is fine")
            assert await ws.recv() == "same host is fine"
        async with connect(interface.ws_url("/o/")) as ws:  # no Origin: not a browser page
            await ws.send("no origin is fine")
            assert await ws.recv() == "no origin is fine"
    assert len(worker.messages("websocket.connect", "/o/")) == 2


async def test_allowed_origins_are_configurable(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface(
        CHANNELWORKS_INTERFACE_ALLOWED_ORIGINS="https://app.example.com, .trusted.example"
    )
    outcomes = {}
    async with FakeWorker(worker_layer):
        for origin in (
            "https://app.example.com",
            "https://eu.trusted.example",
            "http://app.example.com",
            f"http://127.0.0.1:{interface.port}",
        ):
            try:
                async with connect(interface.ws_url("/"), origin=Origin(origin)):
                    outcomes[origin] = "open"
            except InvalidStatus as error:
                outcomes[origin] = str(error.response.status_code)
    assert outcomes == {
        "https://app.example.com": "open",
        "https://eu.trusted.example": "open",
        "http://app.example.com": "403",
        f"http://127.0.0.1:{interface.port}": "403",
    }


async def test_a_full_worker_channel_is_a_503_and_a_1013(start_interface: StartInterface) -> None:
    # Capacity 1 per channel shard (16 shards) and no worker: 40 requests cannot all fit.
    interface = start_interface(
        CHANNELWORKS_LAYER_CAPACITY="1",
        CHANNELWORKS_INTERFACE_HTTP_TIMEOUT="2",
        CHANNELWORKS_INTERFACE_CONNECT_TIMEOUT="2",
    )
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as client:
        responses = await asyncio.gather(
            *(client.get(f"{interface.base_url}/r/{n}") for n in range(40))
        )
    codes = sorted({r.status_code for r in responses})
    assert codes == [503, 504]
    full = [r for r in responses if r.status_code == 503]
    assert len(full) >= 24 and all(r.headers["retry-after"] == "1" for r in full)

    async def open_and_wait(n: int) -> int | None:
        async with connect(interface.ws_url(f"/s/{n}")) as ws:
            return await _close_code(ws)

    closes = await asyncio.gather(*(open_and_wait(n) for n in range(40)))
    assert set(closes) == {1013}  # full at once, or no worker in time: both "try again later"
    text = interface.metrics()
    assert 'reason="channel_full"' in text and 'reason="timeout"' in text


async def test_an_invalid_reply_closes_1011(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async def bad(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.connect":
            await worker.reply(message, {"accept": True})
        elif channel == "websocket.receive":
            await worker.reply(message, {"text": b"bytes are not text"})

    async with FakeWorker(worker_layer, bad), connect(interface.ws_url("/")) as ws:
        await ws.send("go")
        assert await _close_code(ws) == 1011
