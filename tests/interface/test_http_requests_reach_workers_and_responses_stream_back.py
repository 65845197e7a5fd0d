"""HTTP through a real interface process: the request as one message, the response as it comes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from channelworks.layers import RedisChannelLayer
from tests.interface.support import FakeWorker, InterfaceProcess


async def test_the_request_arrives_whole_and_the_response_comes_back(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer) as worker, httpx.AsyncClient() as client:
        response = await client.post(
            f"{interface.base_url}/api/items/?page=2&q=a%20b",
            content=b"x" * 20000,
            headers={"X-Token": "t1", "Content-Type": "application/octet-stream"},
        )
        (request,) = await worker.wait_for("http.request", path="/api/items/")

    assert response.status_code == 200
    assert response.content == b"echo:" + b"x" * 20000
    assert response.headers["x-method"] == "POST"
    assert request["method"] == "POST"
    assert request["path"] == "/api/items/"
    assert request["query_string"] == b"page=2&q=a%20b"
    assert request["http_version"] == "1.1"
    assert request["scheme"] == "http"
    assert request["body"] == b"x" * 20000
    assert [b"x-token", b"t1"] in request["headers"]
    assert request["client"][0] == "127.0.0.1"
    assert request["server"] == ["127.0.0.1", interface.port]
    assert request["reply_channel"].startswith("specific.")


async def test_a_streaming_response_is_relayed_chunk_by_chunk(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    release = asyncio.Event()

    async def stream(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel != "http.request":
            return
        head = {"status": 201, "headers": [["content-type", "text/event-stream"]]}
        await worker.reply(message, {**head, "content": b"first\n", "more_content": True})
        await release.wait()
        await worker.reply(message, {"content": b"second\n", "more_content": True})
        await worker.reply(message, {"content": b"last\n"})

    async with (
        FakeWorker(worker_layer, stream),
        httpx.AsyncClient() as client,
        client.stream("GET", f"{interface.base_url}/events") as response,
    ):
        assert response.status_code == 201
        assert response.headers["content-type"] == "text/event-stream"
        chunks = response.aiter_raw()
        assert await anext(chunks) == b"first\n"  # before the worker sent the rest
        release.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert rest == b"second\nlast\n"


async def test_concurrent_requests_each_get_their_own_reply(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    answering: set[asyncio.Task[None]] = set()

    async def slow_echo(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        async def answer() -> None:
            await asyncio.sleep(0.2)
            await worker.reply(message, {"status": 200, "content": message["path"].encode()})

        answering.add(asyncio.ensure_future(answer()))

    async with FakeWorker(worker_layer, slow_echo), httpx.AsyncClient() as client:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(client.get(f"{interface.base_url}/n/{n}") for n in range(20))
        )
        elapsed = time.monotonic() - started
    assert [r.content for r in responses] == [f"/n/{n}".encode() for n in range(20)]
    assert elapsed < 4.0  # handled side by side, not one after another


async def test_a_reply_that_is_not_a_response_is_a_502(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async def broken(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        await worker.reply(message, {"content": b"no status"})

    async with FakeWorker(worker_layer, broken), httpx.AsyncClient() as client:
        response = await client.get(f"{interface.base_url}/")
    assert response.status_code == 502
