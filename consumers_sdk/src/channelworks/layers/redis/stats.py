"""``queue_stats`` for the Redis layer: three pipelined round trips, whatever the load (the
application's shard state, then per shard its channels, then their lengths and heads)."""

from __future__ import annotations

import asyncio
import time

from channelworks.layers.redis import sharding
from channelworks.layers.redis.batcher import Batcher
from channelworks.layers.redis.keys import KeyLayout
from channelworks.layers.stats import ChannelStats, QueueStats, merge


async def _shard_stats(layout: KeyLayout, batcher: Batcher, shard: int) -> dict[str, ChannelStats]:
    tag = layout.shard_tags[shard]
    names = await batcher.command(tag, "SMEMBERS", layout.channels_seen(shard))
    channels = sorted(name.decode() for name in names)
    if not channels:
        return {}
    lengths = asyncio.gather(
        *(batcher.command(tag, "XLEN", layout.stream(shard, channel)) for channel in channels)
    )
    heads = asyncio.gather(
        *(
            batcher.command(tag, "XRANGE", layout.stream(shard, channel), "-", "+", "COUNT", 1)
            for channel in channels
        )
    )
    depths, firsts = await asyncio.gather(lengths, heads)
    now_ms = time.time() * 1000
    stats: dict[str, ChannelStats] = {}
    for channel, depth, first in zip(channels, depths, firsts, strict=True):
        if not depth:
            continue
        first_id = first[0][0] if first else b"0-0"
        millis = int(first_id.split(b"-", 1)[0])
        stats[channel] = ChannelStats(int(depth), max(0.0, (now_ms - millis) / 1000))
    return stats


async def read_queue_stats(layout: KeyLayout, batcher: Batcher) -> QueueStats:
    """Depth and oldest-message age of every normal channel, summed over its shards (those of
    the current shard epoch and, while a change of the count drains, the previous one)."""
    state = await sharding.read_state(layout, batcher)
    epochs = [state.current] if state.draining is None else [state.current, state.draining]
    layouts = [epoch.layout(layout.prefix) for epoch in epochs]
    parts = await asyncio.gather(
        *(_shard_stats(each, batcher, shard) for each in layouts for shard in range(each.shards))
    )
    return merge(list(parts))
