"""One application's traffic spreads over all masters of a three-master cluster."""

from __future__ import annotations

import asyncio

from channelworks.layers import RedisChannelLayer

from . import redis_probe


async def test_each_master_takes_a_fair_share_of_one_apps_messages(cluster_url: str) -> None:
    layer = RedisChannelLayer(hosts=[cluster_url], prefix="spread", capacity=100_000)
    try:
        sends = [
            layer.send("websocket.receive", {"reply_channel": f"specific.p!{n}", "text": "x"})
            for n in range(3000)
        ]
        sends += [
            layer.send("http.request", {"reply_channel": f"specific.q!{n}", "n": n})
            for n in range(3000)
        ]
        await asyncio.gather(*sends)
        shares = [redis_probe.stream_entries(m, "spread") for m in redis_probe.masters(cluster_url)]
    finally:
        await layer.close()
    assert len(shares) == 3 and sum(shares) == 6000
    for share in shares:
        assert 0.25 < share / 6000 < 0.42, shares


async def test_cluster_chosen_by_url_scheme_or_key(cluster_url: str) -> None:
    by_key = RedisChannelLayer(
        hosts=[cluster_url.replace("redis+cluster://", "redis://")], cluster=True, prefix="k"
    )
    by_url = RedisChannelLayer(hosts=[cluster_url], prefix="k")
    try:
        await by_key.send("handover", {"from": "key"})
        assert await asyncio.wait_for(by_url.receive("handover"), 10) == {"from": "key"}
    finally:
        await by_key.close()
        await by_url.close()
