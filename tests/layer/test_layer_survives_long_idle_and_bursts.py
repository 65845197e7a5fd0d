"""Long-lived use: idle past every wait of the layer, then prompt delivery; 1,000 concurrent
group leaves."""

from __future__ import annotations

import asyncio
import time

from channelworks.layers import RedisChannelLayer

from . import redis_probe


async def test_idle_minute_then_next_message_arrives_at_once(
    redis_url: str, short_redis_waits: float
) -> None:
    """Idle three times the layer's longest wait (shortened: a minute in production crosses the
    5 s blocking reads, the 15 s exchange timeout and receive's 60 s the same way)."""
    layer = RedisChannelLayer(hosts=[redis_url], prefix="idle")
    try:
        reply = await layer.new_channel()
        waiting_reply = asyncio.create_task(layer.receive(reply))
        waiting_work = asyncio.create_task(layer.receive("jobs"))
        await asyncio.sleep(3 * short_redis_waits)  # the idle itself is what is tested
        assert not waiting_reply.done() and not waiting_work.done()
        started = time.monotonic()
        await layer.send(reply, {"after": "idle"})
        await layer.send("jobs", {"after": "idle"})
        assert await asyncio.wait_for(waiting_reply, 2) == {"after": "idle"}
        assert await asyncio.wait_for(waiting_work, 2) == {"after": "idle"}
        assert time.monotonic() - started < 1.0
    finally:
        await layer.close()


async def test_a_thousand_sockets_leave_their_group_at_once(redis_url: str) -> None:
    layer = RedisChannelLayer(hosts=[redis_url], prefix="burst")
    server = redis_probe.client_for(redis_url)
    try:
        channels = [await layer.new_channel() for _ in range(1000)]
        await asyncio.gather(*(layer.group_add("lobby", c) for c in channels))
        clients_before = int(server.info("clients")["connected_clients"])
        await asyncio.wait_for(
            asyncio.gather(*(layer.group_discard("lobby", c) for c in channels)), 10
        )
        clients_after = int(server.info("clients")["connected_clients"])
        members = server.zcard("{burst:g:lobby}")
    finally:
        await layer.close()
    assert members == 0
    assert clients_after - clients_before <= 4, (clients_before, clients_after)
