"""After a minute with no traffic, real sockets on a real interface are answered at once.

The layer test (tests/layer/test_layer_survives_long_idle_and_bursts.py) idles a layer client;
this one idles the processes users talk to: a ``channelworks-interface`` and a
``channelworks-worker`` on a real redis-server, with two open sockets and nothing sent for
``IDLE_SECONDS`` (longer than the interface's 20 s ping interval and the layer's 15 s exchange
timeout, docs/channel-layer.md "Long idle"). Then a frame to the worker and back, a group
message to a socket and a new socket's handshake each take under ``PROMPT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect

from channelworks.layers import RedisChannelLayer
from tests.dataplane.conftest import ChatOnRedis
from tests.dataplane.testbed.consumers import LOBBY

IDLE_SECONDS = 62
PROMPT_SECONDS = 2.0
pytestmark = pytest.mark.timeout(240)


async def test_after_an_idle_minute_frames_group_messages_and_handshakes_are_prompt(
    chat_on_redis: ChatOnRedis,
) -> None:
    stack = chat_on_redis("tests.dataplane.testbed.settings")
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

            await asyncio.sleep(IDLE_SECONDS)

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
    print(
        f"after {IDLE_SECONDS}s idle: frame answered in {echoed:.2f}s, group message in "
        f"{grouped:.2f}s, new socket answered in {greeted:.2f}s"
    )
    assert echoed < PROMPT_SECONDS
    assert grouped < PROMPT_SECONDS
    assert greeted < PROMPT_SECONDS
