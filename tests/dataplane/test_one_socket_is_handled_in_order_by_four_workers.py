"""One socket sends 1,000 numbered chat messages as fast as it can while four worker processes
run: every message is handled once, in the order sent (DESIGN.md "Ordering")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataplane import clients, processes
from tests.support.redis_servers import RedisClusterNodes

MESSAGES = 1000
pytestmark = pytest.mark.timeout(600)  # 1,000 messages one at a time, on a two-core machine


@pytest.fixture(scope="module")
def stack(
    redis_cluster: RedisClusterNodes, chat_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[processes.Stack]:
    root = tmp_path_factory.mktemp("ordering-stack")
    # The socket sends faster than one connection's messages are handled (one at a time), so the
    # queue grows: room for all of them, as a deployment expecting such bursts would configure.
    capacity = {"CHANNELWORKS_LAYER_CAPACITY": str(MESSAGES * 2)}
    with processes.running_stack(
        processes.CHAT, chat_db, redis_cluster.url, root, interfaces=1, workers=4, env=capacity
    ) as running:
        yield running


async def test_a_thousand_messages_of_one_socket_are_handled_in_order(
    stack: processes.Stack,
) -> None:
    interface = stack.interfaces[0]
    before = stack.worker_metric(
        "channelworks_worker_messages_total", {"channel": "websocket.receive"}
    )
    async with asyncio.timeout(240):
        alice, _ = await clients.open_chat(
            interface.ws_url("/chat/stream/"), await clients.login(interface.base_url, "alice")
        )
        await clients.join(alice, "random")
        started = time.monotonic()
        for number in range(MESSAGES):
            await alice.send({"command": "send", "room": "random", "message": str(number)})
        said: list[dict[str, object]] = []
        while len(said) < MESSAGES:
            frame = await alice.recv(timeout=60)
            if "message" in frame:
                said.append(frame)
        elapsed = time.monotonic() - started
        await alice.close()
    numbers = [int(str(frame["message"])) for frame in said]
    ids = [int(str(frame["id"])) for frame in said]
    print(f"{MESSAGES} messages of one socket handled in order in {elapsed:.1f}s")
    assert numbers == list(range(MESSAGES)), "the messages came back out of order or not once"
    assert ids == sorted(ids), "the messages were stored out of order"
    after = stack.worker_metric(
        "channelworks_worker_messages_total", {"channel": "websocket.receive"}
    )
    assert after - before >= MESSAGES + 1  # the join and the 1,000 sends, across the workers
