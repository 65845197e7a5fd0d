"""The operator keeps the app's layer at ``spec.channelLayer.workShards`` (or the count derived
from maxReplicas): each read of the queue statistics changes the count online, one change at a
time, and the queue it reads counts the messages of both the old and the new shards.

Real redis-server; the app uses it as an external Redis; a real work receiver drains the queue.
"""

from __future__ import annotations

import secrets
from typing import Any

from channelworks.layers import RedisChannelLayer
from channelworks_operator import channel_layer, spec
from channelworks_operator.queue_metrics import QueueStatsReader
from tests.operator import samples
from tests.support.eventually import eventually_async

CHANNEL = "websocket.receive"
TIMEOUT = 10.0


NAME = f"shards{secrets.token_hex(3)}"


def _app(url: str, **layer: Any) -> spec.App:
    fields = {
        "worker": {"autoscaling": {"maxReplicas": 100, "targetQueueDepth": 10}},
        "channelLayer": {"redis": {"mode": "external", "url": url}, **layer},
    }
    return spec.parse(samples.app_body(name=NAME, spec_fields=fields))


async def test_the_count_follows_the_spec_online(redis_url: str) -> None:
    app = _app(redis_url)
    assert app.channel_layer.shards == 128  # derived from maxReplicas 100
    key = f"demo/{app.ref.name}"
    sender = RedisChannelLayer(hosts=[redis_url], prefix=app.ref.prefix)
    worker_layer = RedisChannelLayer(hosts=[redis_url], prefix=app.ref.prefix)
    reader = QueueStatsReader()

    async def send(first: int) -> None:
        for order in range(first, first + 10):
            message = {"reply_channel": "specific.op!c1", "order": order}
            await sender.send(CHANNEL, message)

    try:
        await send(0)  # on the 16 shards every app starts with
        snapshot = await reader.read(key, channel_layer.target(app, None), TIMEOUT)
        state = await sender.work_shards()
        assert (state.current.count, state.draining and state.draining.count) == (128, 16)
        assert snapshot.depth == 10
        await send(10)  # the sender learns the new count from the sealed shard
        snapshot = await reader.read(key, channel_layer.target(app, None), TIMEOUT)
        assert snapshot.depth == 20  # both epochs counted

        lowered = _app(redis_url, workShards=16)
        await reader.read(key, channel_layer.target(lowered, None), TIMEOUT)
        state = await sender.work_shards()
        assert state.current.count == 128  # the first change is still draining: not yet

        taken: list[int] = []
        receiver = worker_layer.work_receiver([CHANNEL])
        while len(taken) < 20:
            delivery = await receiver.get(timeout=TIMEOUT)
            assert delivery is not None, f"only {taken} arrived"
            taken.append(delivery.message["order"])
            await delivery.ack()
        assert taken == list(range(20))

        async def lowered_to_sixteen() -> None:
            await reader.read(key, channel_layer.target(lowered, None), TIMEOUT)
            state = await sender.work_shards()
            assert state.current.count == 16, state

        await eventually_async(lowered_to_sixteen, timeout=30, interval=0.5)
        await receiver.stop(timeout=2)
    finally:
        await reader.close()
        await sender.close()
        await worker_layer.close()
