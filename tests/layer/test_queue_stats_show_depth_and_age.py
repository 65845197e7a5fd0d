"""queue_stats(): depth and oldest age per channel, cheap enough to call every second."""

from __future__ import annotations

import asyncio

from channelworks.layers import ChannelworksLayer, RedisChannelLayer

from . import redis_probe


async def test_depth_and_oldest_age_per_channel_and_in_total(layer: ChannelworksLayer) -> None:
    for number in range(5):
        await layer.send("http.request", {"n": number})
    await asyncio.sleep(0.5)
    await layer.send("websocket.receive", {"reply_channel": "specific.x!y", "text": "hi"})
    stats = await layer.queue_stats()
    assert stats.channels["http.request"].depth == 5
    assert stats.channels["websocket.receive"].depth == 1
    assert stats.total_depth == 6
    assert 0.4 < stats.channels["http.request"].oldest_age_seconds < 5
    assert stats.channels["websocket.receive"].oldest_age_seconds < 0.4
    assert stats.oldest_age_seconds == stats.channels["http.request"].oldest_age_seconds
    await layer.receive("websocket.receive")
    assert "websocket.receive" not in (await layer.queue_stats()).channels


async def test_queue_stats_cost_does_not_grow_with_queue_depth(redis_url: str) -> None:
    layer = RedisChannelLayer(hosts=[redis_url], prefix="stats", capacity=100_000)
    server = redis_probe.client_for(redis_url)
    try:
        keyed = [{"reply_channel": f"specific.i!{n}", "n": n} for n in range(200)]
        await asyncio.gather(*(layer.send("work", message) for message in keyed))
        before = redis_probe.commands_processed(server)
        await layer.queue_stats()
        small = redis_probe.commands_processed(server) - before
        more = [{"reply_channel": f"specific.i!{n}", "n": n} for n in range(20_000)]
        await asyncio.gather(*(layer.send("work", message) for message in more))
        before = redis_probe.commands_processed(server)
        stats = await layer.queue_stats()
        large = redis_probe.commands_processed(server) - before
    finally:
        await layer.close()
    assert stats.channels["work"].depth == 20_200
    assert large == small, (small, large)
