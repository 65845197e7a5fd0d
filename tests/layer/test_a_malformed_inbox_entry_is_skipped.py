"""A malformed entry in a process's inbox is logged, counted and skipped; the rest of its batch
and everything after it are delivered.

Anything that can write to the app's Redis (a client of another version, a person with
``redis-cli``) can put an entry in a process inbox that the layer did not write. Here three bad
entries (not msgpack, the wrong shape, a message that does not decode) are pushed in one write
with a good one before and after, so one blocking read takes them all in one batch.
"""

from __future__ import annotations

import asyncio
import logging

import msgpack
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from channelworks.layers import RedisChannelLayer, codec, naming
from channelworks.layers.metrics import ChannelFullCollector
from channelworks.layers.redis.inbox import pack_entry
from channelworks.layers.redis.keys import KeyLayout

BAD_ENTRIES = [
    b"\xc1 not msgpack at all",
    msgpack.packb([1, 2]),
    pack_entry("LOCAL", b"\xc1 not an encoded message"),
]


async def test_bad_entries_are_skipped_and_the_rest_delivered(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    layer = RedisChannelLayer(hosts=[redis_url], prefix="malformed")
    raw = aioredis.Redis.from_url(redis_url)
    try:
        channel = await layer.new_channel()
        head, local = naming.split_process_specific(channel)
        inbox = KeyLayout("malformed", layer.config.shards).inbox(naming.process_of(head))
        await layer.send(channel, {"n": 0})
        assert await layer.receive(channel) == {"n": 0}  # the inbox reader runs

        def good(n: int) -> bytes:
            return pack_entry(local, codec.encode({"n": n}))

        bad = [entry.replace(b"LOCAL", local.encode()) for entry in BAD_ENTRIES]
        with caplog.at_level(logging.WARNING, logger="channelworks.layers.redis"):
            await raw.rpush(inbox, good(1), *bad, good(2))
            got = [await asyncio.wait_for(layer.receive(channel), 10) for _ in range(2)]
            assert got == [{"n": 1}, {"n": 2}]
            await layer.send(channel, {"n": 3})
            assert await asyncio.wait_for(layer.receive(channel), 10) == {"n": 3}

        registry = CollectorRegistry()
        ChannelFullCollector(layer, registry)
        exported = registry.get_sample_value("channelworks_layer_malformed_messages_total")
        assert layer.malformed_count == exported == len(BAD_ENTRIES)
        skipped = [record for record in caplog.records if "malformed" in record.getMessage()]
        assert len(skipped) == len(BAD_ENTRIES), [r.getMessage() for r in caplog.records]
    finally:
        await raw.aclose()
        await layer.flush()
        await layer.close()
