"""A process-specific channel (a socket's reply channel) that gets more than ``capacity``
messages its receiver has not taken keeps the newest ``capacity``, and every message it drops
is counted in ``channelworks_layer_channel_full_total``, never dropped silently.

A send to such a channel goes to its process's inbox, which a process drains at once (a stuck
process fills its inbox: ``inbox_capacity``, ``ChannelFull``); the channel's own limit applies to
what the process holds for a receiver that is not taking.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from channelworks.layers import RedisChannelLayer
from channelworks.layers.metrics import ChannelFullCollector
from tests.support.eventually import eventually_async

CAPACITY = 3
SENT = 5


@pytest.mark.parametrize("backend", ["redis", "cluster"])
async def test_an_overfull_process_channel_keeps_the_newest_and_counts_the_rest(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url" if backend == "redis" else "cluster_url")
    layer = RedisChannelLayer(hosts=[url], prefix="overfull", capacity=CAPACITY)
    registry = CollectorRegistry()
    ChannelFullCollector(layer, registry)
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"n": -1})
        assert await layer.receive(channel) == {"n": -1}  # the inbox reader runs
        for number in range(SENT):
            await layer.send(channel, {"n": number})

        def counted() -> float | None:
            return registry.get_sample_value("channelworks_layer_channel_full_total")

        # the inbox reader takes the sends in the background
        await eventually_async(lambda: counted() == SENT - CAPACITY, timeout=5)
        assert layer.channel_full_count == SENT - CAPACITY
        kept = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(CAPACITY)]
        assert kept == [{"n": number} for number in range(SENT - CAPACITY, SENT)]
    finally:
        await layer.flush()
        await layer.close()
