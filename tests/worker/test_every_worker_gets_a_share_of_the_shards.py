"""Work shards are split as evenly as the count allows: with up to as many workers as shards,
every worker holds at least one (none idles), and shares differ by one at most.

Real redis-server; ten members of one worker group, each with its own layer (as ten worker
processes would have), over the layer's 16 shards.
"""

from __future__ import annotations

import asyncio
import secrets

from channelworks.layers import RedisChannelLayer
from channelworks.layers.redis.work import share
from tests.support.eventually import eventually_async

MEMBERS = 10


def test_shares_add_up_and_differ_by_one_at_most() -> None:
    for shards in (1, 16, 64):
        for count in (1, 2, 3, 10, 16, 17, 64, 100):
            members = [f"m{n:03d}" for n in range(count)]
            shares = [share(shards, members, member) for member in members]
            assert sum(shares) == shards
            assert max(shares) - min(shares) <= 1
            if count <= shards:
                assert min(shares) >= 1


async def test_ten_workers_over_sixteen_shards_all_take_work(redis_url: str) -> None:
    prefix = f"share{secrets.token_hex(3)}"
    layers = [RedisChannelLayer(hosts=[redis_url], prefix=prefix) for _ in range(MEMBERS)]
    receivers = [layer.work_receiver(["jobs"]) for layer in layers]
    try:
        for receiver in receivers:
            await receiver.get(timeout=0.01)  # joins the group

        def balanced() -> None:
            held = sorted(len(receiver.owned_shards) for receiver in receivers)  # type: ignore[attr-defined]
            assert held == [1] * 4 + [2] * 6, held

        await eventually_async(balanced, timeout=30, interval=0.2)
        owned = [set(receiver.owned_shards) for receiver in receivers]  # type: ignore[attr-defined]
        assert set().union(*owned) == set(range(16))
    finally:
        await asyncio.gather(*(receiver.stop(timeout=2) for receiver in receivers))
        await asyncio.gather(*(layer.close() for layer in layers))
