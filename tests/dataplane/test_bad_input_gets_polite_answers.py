"""Bad input against real processes: each gets the polite answer of docs/interface.md and
docs/worker.md, and the interface and worker processes stay up and keep serving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from channelworks.layers import RedisChannelLayer
from tests.dataplane import clients, processes
from tests.support.eventually import eventually_async
from tests.support.redis_servers import RedisClusterNodes

CONNECT_TIMEOUT = 3.0
MAX_MESSAGE_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def stack(
    redis_cluster: RedisClusterNodes, chat_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[processes.Stack]:
    env = {
        "CHANNELWORKS_INTERFACE_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "CHANNELWORKS_INTERFACE_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
    }
    with processes.running_stack(
        processes.CHAT,
        chat_db,
        redis_cluster.url,
        tmp_path_factory.mktemp("bad-input-stack"),
        interfaces=1,
        workers=2,
        settings="tests.dataplane.testbed.settings",
        env=env,
    ) as running:
        yield running


@pytest.fixture
async def healthy(stack: processes.Stack) -> AsyncIterator[processes.Stack]:
    """After the test: every process still runs, is live and ready, and a socket is answered."""
    yield stack
    for process in stack.processes:
        assert process.alive, f"{process.name} died:\n{process.log()}"
        assert process.probe("/healthz") == 200 and process.probe("/readyz") == 200
    async with asyncio.timeout(30), connect(stack.interfaces[0].ws_url("/echo/")) as ws:
        await ws.send(json.dumps({"n": 7}))
        assert json.loads(await ws.recv())["n"] == 7


async def close_code(ws: object, timeout: float = 20.0) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()  # type: ignore[attr-defined]
    except ConnectionClosed as error:
        return error.rcvd.code if error.rcvd is not None else None


async def test_an_oversized_frame_closes_the_socket_with_1009(healthy: processes.Stack) -> None:
    async with connect(healthy.interfaces[0].ws_url("/echo/"), max_size=None) as ws:
        await ws.send("x" * (MAX_MESSAGE_BYTES + 1))
        assert await close_code(ws) == 1009


async def test_a_frame_that_is_not_json_closes_a_json_consumer_with_1007(
    healthy: processes.Stack,
) -> None:
    interface = healthy.interfaces[0]
    session = await clients.login(interface.base_url, "bob")
    chat, _ = await clients.open_chat(interface.ws_url("/chat/stream/"), session)
    await chat.connection.send("{this is not json")
    assert await close_code(chat.connection) == 1007


async def test_a_message_no_route_matches_is_counted_and_dropped(
    healthy: processes.Stack,
) -> None:
    labels = {"channel": "testbed.jobs", "outcome": "unrouted"}
    before = healthy.worker_metric("channelworks_worker_messages_total", labels)
    layer = RedisChannelLayer(hosts=[healthy.redis_url], prefix=healthy.prefix)
    try:
        reply_to = await layer.new_channel()
        await layer.send("testbed.jobs", {"kind": "mystery", "id": 1, "reply_to": reply_to})
        await layer.send("testbed.jobs", {"kind": "known", "id": 2, "reply_to": reply_to})
        answer = await asyncio.wait_for(layer.receive(reply_to), 30)
    finally:
        await layer.close()
    assert answer == {"done": 2}  # only the routed one was handled, and the workers went on

    async def counted() -> None:
        after = healthy.worker_metric("channelworks_worker_messages_total", labels)
        assert after == before + 1

    await eventually_async(counted, timeout=10)


async def test_a_consumer_that_raises_is_counted_and_the_socket_goes_on(
    healthy: processes.Stack,
) -> None:
    labels = {"channel": "websocket.receive", "outcome": "error"}
    before = healthy.worker_metric("channelworks_worker_messages_total", labels)
    async with asyncio.timeout(30), connect(healthy.interfaces[0].ws_url("/explode/")) as ws:
        await ws.send("boom")
        await ws.send("still there?")
        assert await ws.recv() == "still there?"
    assert healthy.worker_metric("channelworks_worker_messages_total", labels) == before + 1
    logs = "".join(worker.log() for worker in healthy.workers)
    assert "consumer failed on websocket.receive" in logs
    assert "this consumer fails on purpose" in logs


async def test_a_connect_consumer_that_raises_gets_1011_at_once(
    healthy: processes.Stack,
) -> None:
    url = healthy.interfaces[0].ws_url("/explode-on-connect/")
    async with asyncio.timeout(30), connect(url) as ws:
        # The worker closes it (1011), not the interface giving up on an answer (1013); how soon:
        # tests/sdk/test_a_connect_consumer_that_raises_closes_the_socket_with_1011.py.
        assert await close_code(ws, timeout=CONNECT_TIMEOUT + 10) == 1011


async def test_http_errors_are_pages_not_hangs(healthy: processes.Stack) -> None:
    async with httpx.AsyncClient(base_url=healthy.interfaces[0].base_url, timeout=30) as client:
        broken = await client.get("/broken/")
        missing = await client.get("/no/such/page/")
    assert broken.status_code == 500
    assert missing.status_code == 404


async def test_a_websocket_path_nothing_serves_is_refused(healthy: processes.Stack) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(30):
            await connect(healthy.interfaces[0].ws_url("/no/such/socket/"))
    assert refused.value.response.status_code == 403
