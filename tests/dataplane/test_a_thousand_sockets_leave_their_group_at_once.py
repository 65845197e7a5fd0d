"""1,000 WebSockets in one group, held by two real interface processes, close at the same moment.

The layer test (tests/layer/test_layer_survives_long_idle_and_bursts.py) discards 1,000 channels
from a group by calling the layer; this one goes the way users do: real sockets on
``channelworks-interface`` processes, a ``websocket.disconnect`` per socket through the queue to
two ``channelworks-worker`` processes whose consumer discards the socket from the group, all at
the default capacity. What a user would notice, and this test holds:

- the group is empty of the gone sockets within ``CLEANUP_SECONDS`` (none stays a member
  forever, docs/interface.md: every disconnect reaches the workers);
- a socket that stayed still gets the next group message, promptly;
- the interfaces count one open socket again.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from channelworks.layers import RedisChannelLayer
from tests.dataplane import processes
from tests.dataplane.testbed.consumers import LOBBY
from tests.support.eventually import eventually_async
from tests.support.redis_servers import RedisServer

SOCKETS = 1000
CONNECTING_AT_ONCE = 50
CLEANUP_SECONDS = 30.0  # 1,000 disconnects through two workers, on a shared two-core machine
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def stack(redis_server: RedisServer, chat_db: Path, tmp_path: Path) -> Iterator[processes.Stack]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 4 * SOCKETS)  # this process holds 1,000 sockets; the interfaces half each
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    with processes.running_stack(
        processes.CHAT,
        chat_db,
        redis_server.url,
        tmp_path,
        interfaces=2,
        workers=2,
        settings="tests.dataplane.testbed.settings",
        env={"CHANNELWORKS_REDIS_MODE": "standalone"},
    ) as running:
        yield running


def _members(redis_server: RedisServer, layer: RedisChannelLayer) -> int:
    return int(redis_server.cli("ZCARD", layer.layout.group(LOBBY)))


def _open_sockets(stack: processes.Stack) -> float:
    return sum(
        processes.metric(interface.metrics(), "channelworks_interface_connections")
        for interface in stack.interfaces
    )


async def test_a_thousand_sockets_closing_at_once_leave_their_group(
    stack: processes.Stack, redis_server: RedisServer
) -> None:
    layer = RedisChannelLayer(hosts=[stack.redis_url], prefix=stack.prefix)
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def join(index: int) -> ClientConnection:
        async with gate:
            return await connect(stack.interfaces[index % 2].ws_url("/lobby/"), open_timeout=60)

    try:
        async with asyncio.timeout(240):
            stayer = await join(0)
            leavers = await asyncio.gather(*(join(n) for n in range(SOCKETS)))
            await eventually_async(
                lambda: _members(redis_server, layer) == SOCKETS + 1,
                timeout=60,
                interval=0.5,
            )
            disconnects_before = stack.worker_metric(
                "channelworks_worker_messages_total", {"channel": "websocket.disconnect"}
            )

            started = time.monotonic()
            await asyncio.gather(*(ws.close() for ws in leavers))
            closed_after = time.monotonic() - started
            try:
                await eventually_async(
                    lambda: _members(redis_server, layer) == 1,
                    timeout=CLEANUP_SECONDS,
                    interval=0.25,
                )
            finally:
                left_after = time.monotonic() - started
                disconnects = (
                    stack.worker_metric(
                        "channelworks_worker_messages_total", {"channel": "websocket.disconnect"}
                    )
                    - disconnects_before
                )
                print(
                    f"{SOCKETS} sockets closed in {closed_after:.1f}s; group members "
                    f"{_members(redis_server, layer) - 1} left after {left_after:.1f}s; "
                    f"{disconnects:.0f} websocket.disconnect handled by the workers"
                )

            sent = time.monotonic()
            await layer.group_send(LOBBY, {"text": json.dumps({"after": "the leave"})})
            assert json.loads(await asyncio.wait_for(stayer.recv(), 5)) == {"after": "the leave"}
            print(f"the stayer got the group message in {time.monotonic() - sent:.2f}s")
            await eventually_async(lambda: _open_sockets(stack) == 1, timeout=10, interval=0.25)
            await stayer.close()
    finally:
        await layer.close()
