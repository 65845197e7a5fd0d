"""``flush()`` deletes its own application's keys and no other's.

Several RealtimeApps may share one Redis, each under its own prefix. An app named ``chat`` must
not wipe ``chat-staging`` (a longer prefix that starts the same), and a prefix with glob
characters must not reach any other app's keys, on a standalone server and on a cluster.
"""

from __future__ import annotations

import pytest

from channelworks.layers import RedisChannelLayer

NEIGHBOURS = ("chat-staging", "chat#2", "chatter", "c")


async def _fill(layer: RedisChannelLayer) -> str:
    """A message on a normal channel, one on a process channel, a group member; returns the
    process channel."""
    reply = await layer.new_channel()
    await layer.send("work", {"app": layer.config.prefix})
    await layer.send(reply, {"reply": layer.config.prefix})
    await layer.group_add("room", reply)
    return reply


async def _depths(layer: RedisChannelLayer) -> dict[str, int]:
    return {name: stats.depth for name, stats in (await layer.queue_stats()).channels.items()}


@pytest.mark.parametrize("backend", ["redis", "cluster"])
@pytest.mark.parametrize("flushed", ["chat", "c*"])
async def test_flush_leaves_other_apps_keys_alone(
    backend: str, flushed: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url" if backend == "redis" else "cluster_url")
    layers = {prefix: RedisChannelLayer(hosts=[url], prefix=prefix) for prefix in NEIGHBOURS}
    target = RedisChannelLayer(hosts=[url], prefix=flushed)
    try:
        replies = {prefix: await _fill(layer) for prefix, layer in layers.items()}
        await _fill(target)
        depths = {prefix: await _depths(layer) for prefix, layer in layers.items()}

        await target.flush()

        assert (await target.queue_stats()).channels == {}
        for prefix, layer in layers.items():
            assert await _depths(layer) == depths[prefix] == {"work": 1}, f"{prefix} lost messages"
            assert await layer.receive("work") == {"app": prefix}
            assert await layer.receive(replies[prefix]) == {"reply": prefix}
            await layer.group_send("room", {"to": prefix})
            assert await layer.receive(replies[prefix]) == {"to": prefix}, f"{prefix}'s group"
    finally:
        for layer in [target, *layers.values()]:
            await layer.flush()
            await layer.close()
