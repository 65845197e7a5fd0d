"""After a long idle, real sockets on a real interface are answered at once.

The layer test (tests/layer/test_layer_survives_long_idle_and_bursts.py) idles a layer client;
this one idles the processes users talk to: a ``channelworks-interface`` and a
``channelworks-worker`` on a real redis-server, with two open sockets and nothing sent for
``IDLE_SECONDS``. In production that is a minute: longer than the interface's 20 s ping interval,
the layer's 15 s exchange timeout and ``receive()``'s 60 s wait (docs/channel-layer.md "Long
idle"); here the processes run with those waits shortened (a 1 s ping interval, and the layer's
short waits of tests/support/redis_waits.py), and the idle crosses each of them three times.
Then a frame to the worker and back, a group message to a socket and a new socket's handshake
each take under ``PROMPT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
import redis
from websockets.asyncio.client import connect

from channelworks.layers import RedisChannelLayer
from tests.dataplane import processes
from tests.dataplane.conftest import ChatOnRedis
from tests.dataplane.testbed.consumers import LOBBY
from tests.support import redis_waits

PING_INTERVAL = 1.0
IDLE_SECONDS = 3 * max(PING_INTERVAL, redis_waits.LONGEST)
PROMPT_SECONDS = 2.0
pytestmark = pytest.mark.timeout(240)


async def test_after_an_idle_minute_frames_group_messages_and_handshakes_are_prompt(
    chat_on_redis: ChatOnRedis,
) -> None:
    stack = chat_on_redis(
        "tests.dataplane.testbed.settings",
        CHANNELWORKS_INTERFACE_PING_INTERVAL=str(PING_INTERVAL),
        PYTHONPATH=os.pathsep.join(
            [redis_waits.CHILD_PYTHONPATH, str(processes.CHAT.folder), str(processes.REPO)]
        ),
    )
    interface = stack.interfaces[0]
    layer = RedisChannelLayer(hosts=[stack.redis_url], prefix=stack.prefix)
    try:
        async with (
            asyncio.timeout(IDLE_SECONDS + 120),
            connect(interface.ws_url("/echo/")) as echo,
            connect(interface.ws_url("/lobby/")) as member,
        ):
            await echo.send(json.dumps({"n": 0}))
            assert json.loads(await asyncio.wait_for(echo.recv(), 30))["n"] == 0

            server = redis.Redis.from_url(stack.redis_url)
            server.config_resetstat()
            await asyncio.sleep(IDLE_SECONDS)  # the idle itself is what is tested
            reads = server.info("commandstats")
            server.close()

            started = time.monotonic()
            await echo.send(json.dumps({"n": 1}))
            assert json.loads(await asyncio.wait_for(echo.recv(), 10))["n"] == 1
            echoed = time.monotonic() - started

            started = time.monotonic()
            await layer.group_send(LOBBY, {"text": "after the idle minute"})
            assert await asyncio.wait_for(member.recv(), 10) == "after the idle minute"
            grouped = time.monotonic() - started

            started = time.monotonic()
            async with connect(interface.ws_url("/echo/"), open_timeout=10) as newcomer:
                await newcomer.send(json.dumps({"n": 2}))
                assert json.loads(await asyncio.wait_for(newcomer.recv(), 10))["n"] == 2
            greeted = time.monotonic() - started
    finally:
        await layer.close()
    # The processes ran with the short waits: their blocking reads (the interface's BLMPOP of its
    # inbox, the worker's XREAD of its work streams) went again and again during the idle.
    for command in ("cmdstat_blmpop", "cmdstat_xread"):
        assert reads.get(command, {}).get("calls", 0) >= 5, reads.get(command)
    print(
        f"after {IDLE_SECONDS}s idle: frame answered in {echoed:.2f}s, group message in "
        f"{grouped:.2f}s, new socket answered in {greeted:.2f}s"
    )
    assert echoed < PROMPT_SECONDS
    assert grouped < PROMPT_SECONDS
    assert greeted < PROMPT_SECONDS
