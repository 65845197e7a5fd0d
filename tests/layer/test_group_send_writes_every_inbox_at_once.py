"""A group send on one Redis server is one script that writes every process's inbox; with
sharded hosts (and on a cluster) it reads the members first, then writes the inboxes."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from channelworks.layers import RedisChannelLayer

from . import redis_probe

MakeProcess = Callable[..., RedisChannelLayer]


@pytest.fixture(params=["one server", "sharded hosts"])
async def make_process(
    request: pytest.FixtureRequest, redis_url: str
) -> AsyncIterator[MakeProcess]:
    """Layers standing for separate processes of one app (one server, or two sharded "hosts"
    that happen to be the same server, which takes the two-step path)."""
    hosts = [redis_url] if request.param == "one server" else [redis_url, redis_url]
    prefix = f"fan{secrets.token_hex(4)}"
    made: list[RedisChannelLayer] = []

    def make(**config: Any) -> RedisChannelLayer:
        layer = RedisChannelLayer(hosts=hosts, prefix=prefix, **config)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.close()


async def test_one_send_reaches_members_in_several_processes_and_normal_channels(
    make_process: MakeProcess,
) -> None:
    processes = [make_process() for _ in range(3)]
    sender = make_process()
    members = [[await p.new_channel() for _ in range(2)] for p in processes]
    for process, channels in zip(processes, members, strict=True):
        for channel in channels:
            await process.group_add("room", channel)
    await sender.group_add("room", "audit.room")
    await sender.group_send("room", {"text": "to all"})
    received = await asyncio.wait_for(
        asyncio.gather(
            *(
                p.receive(c)
                for p, channels in zip(processes, members, strict=True)
                for c in channels
            )
        ),
        5,
    )
    assert received == [{"text": "to all"}] * 6
    assert await asyncio.wait_for(sender.receive("audit.room"), 5) == {"text": "to all"}
    assert sender.channel_full_count == 0


async def test_a_full_inbox_is_counted_and_skipped_while_the_others_get_the_message(
    make_process: MakeProcess,
) -> None:
    stuck, reading = make_process(), make_process()
    sender = make_process(inbox_capacity=2)
    stuck_channel, reading_channel = await stuck.new_channel(), await reading.new_channel()
    await stuck.group_add("room", stuck_channel)  # never reads: its inbox fills up
    await reading.group_add("room", reading_channel)
    for n in range(3):
        await sender.group_send("room", {"n": n})
        assert await asyncio.wait_for(reading.receive(reading_channel), 5) == {"n": n}
    assert sender.channel_full_count == 1  # the third send found the stuck inbox full
    # what did get in is still there for the stuck process once it reads
    assert await asyncio.wait_for(stuck.receive(stuck_channel), 5) == {"n": 0}
    assert await asyncio.wait_for(stuck.receive(stuck_channel), 5) == {"n": 1}


async def _gets(layer: RedisChannelLayer, channel: str, expected: dict[str, Any]) -> bool:
    """True if ``channel`` receives ``expected`` within half a second, False if nothing comes."""
    try:
        message = await asyncio.wait_for(layer.receive(channel), 0.5)
    except TimeoutError:
        return False
    assert message == expected
    return True


async def test_later_sends_follow_joins_and_leaves(redis_url: str) -> None:
    """One server reuses what the last send found out about the group (its send plan) only
    while it still describes the live members."""
    prefix = f"plan{secrets.token_hex(4)}"
    layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    server = redis_probe.client_for(redis_url)
    try:
        await layer.group_send("nobody", {"n": 0})  # a group without members...
        assert server.keys(f"{{{prefix}:g:nobody}}*") == []  # ...leaves no key behind

        first, second, third, fourth = [await layer.new_channel() for _ in range(4)]
        await layer.group_add("room", first)
        await layer.group_add("room", second)
        await layer.group_send("room", {"n": 1})
        assert await _gets(layer, first, {"n": 1}) and await _gets(layer, second, {"n": 1})

        await layer.group_discard("room", second)
        await layer.group_add("room", third)  # as many members as before
        await layer.group_send("room", {"n": 2})
        assert await _gets(layer, first, {"n": 2}) and await _gets(layer, third, {"n": 2})
        assert not await _gets(layer, second, {"n": 2})

        # a member written by a client that knows nothing of send plans still gets messages
        server.zadd(f"{{{prefix}:g:room}}", {fourth: time.time()})
        await layer.group_send("room", {"n": 3})
        for channel in (first, third, fourth):
            assert await _gets(layer, channel, {"n": 3})
    finally:
        server.close()
        await layer.close()


async def test_a_lapsed_member_gets_nothing_while_the_group_lives_on(redis_url: str) -> None:
    layer = RedisChannelLayer(
        hosts=[redis_url], prefix=f"plan{secrets.token_hex(4)}", group_expiry=2
    )
    try:
        early, late = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("room", early)
        await asyncio.sleep(1.0)
        await layer.group_add("room", late)  # the group lives until 2 s after this
        await layer.group_send("room", {"n": 1})
        assert await _gets(layer, early, {"n": 1}) and await _gets(layer, late, {"n": 1})
        await asyncio.sleep(1.4)  # early's membership has lapsed (at 2 s), late's has not (3 s)
        await layer.group_send("room", {"n": 2})
        assert await _gets(layer, late, {"n": 2})
        assert not await _gets(layer, early, {"n": 2})
    finally:
        await layer.close()
