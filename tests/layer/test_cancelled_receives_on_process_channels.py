"""A receive on a process-specific channel that is cancelled just as its message arrives leaves
that message for the next receive (the Redis layer's inbox hands messages to waiting receives)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from channelworks.layers import codec
from channelworks.layers.redis.inbox import Inbox, pack_entry
from channelworks.layers.redis.wire import Line


async def test_a_receive_cancelled_as_its_message_arrives_leaves_it_for_the_next(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    overflows: list[str] = []
    malformed: list[str] = []
    inbox = Inbox(
        Line(client, 15.0),
        "{cancel:abc}:inbox",
        60.0,
        lambda _: 10,
        overflows.append,
        malformed.append,
    )
    try:
        first = asyncio.create_task(inbox.receive("a", "specific.abc!a"))
        second = asyncio.create_task(inbox.receive("b", "specific.abc!b"))
        await asyncio.sleep(0.05)  # both wait
        # the inbox reader hands one entry naming both channels over ...
        inbox._deliver(pack_entry("a,b", codec.encode({"n": 1})))
        first.cancel()  # ... and the first receive is cancelled before it could take it
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await asyncio.wait_for(second, 1) == {"n": 1}
        assert await asyncio.wait_for(inbox.receive("a", "specific.abc!a"), 1) == {"n": 1}
        inbox._deliver(pack_entry("a", codec.encode({"n": 2})))  # nobody waits: queued
        assert await asyncio.wait_for(inbox.receive("a", "specific.abc!a"), 1) == {"n": 2}
        assert overflows == malformed == []
    finally:
        await inbox.close()
        await client.aclose()
