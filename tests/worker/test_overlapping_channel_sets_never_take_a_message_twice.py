"""Workers whose channel sets overlap (a rollout that adds a route: old pods on ``a,b``, new pods
on ``a,b,c``) never read one stream at once: every message is handed out once, and the new
set's extra channel is served as soon as the old members leave.

Real redis-server; two members with their own layers, as two worker processes would have.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

from channelworks.layers import RedisChannelLayer, WorkReceiver
from tests.support.eventually import eventually_async

MESSAGES = 64


async def _take(receiver: WorkReceiver, into: list[tuple[str, int]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        delivery = await receiver.get(timeout=0.2)
        if delivery is not None:
            into.append((delivery.channel, delivery.message["n"]))
            await delivery.ack()


async def test_old_and_new_channel_sets_share_no_stream(redis_url: str) -> None:
    prefix = f"overlap{secrets.token_hex(3)}"
    producer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    old_layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    new_layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    old = old_layer.work_receiver(["a", "b"])
    new = new_layer.work_receiver(["a", "b", "c"])
    taken_old: list[tuple[str, int]] = []
    taken_new: list[tuple[str, int]] = []
    stop_old, stop_new = asyncio.Event(), asyncio.Event()
    runners = [asyncio.create_task(_take(old, taken_old, stop_old))]
    try:
        await eventually_async(lambda: len(old.owned_shards) == 16, timeout=10)  # type: ignore[attr-defined]
        runners.append(asyncio.create_task(_take(new, taken_new, stop_new)))  # the rollout starts
        await asyncio.sleep(2.0)  # the new member tries a few rounds
        assert new.owned_shards == []  # type: ignore[attr-defined]
        for n in range(MESSAGES):
            for channel in ("a", "b", "c"):
                await producer.send(channel, {"reply_channel": f"specific.t!{n}", "n": n})
        await eventually_async(lambda: len(taken_old) >= 2 * MESSAGES, timeout=20)
        assert taken_new == []  # c waits for the old member: it is not taken by anyone twice

        stop_old.set()  # the old pod goes (SIGTERM): its shards pass to the new member
        await runners[0]
        await old.stop(timeout=5)
        await eventually_async(lambda: len(taken_new) >= MESSAGES, timeout=30)
        await asyncio.sleep(1.0)
        everything = Counter(taken_old + taken_new)
        assert set(everything) == {(ch, n) for ch in ("a", "b", "c") for n in range(MESSAGES)}
        assert max(everything.values()) == 1  # none handed out twice
        assert {channel for channel, _ in taken_new} == {"c"}
    finally:
        stop_old.set()
        stop_new.set()
        await asyncio.gather(*runners, return_exceptions=True)
        await new.stop(timeout=5)
        for layer in (producer, old_layer, new_layer):
            await layer.close()
