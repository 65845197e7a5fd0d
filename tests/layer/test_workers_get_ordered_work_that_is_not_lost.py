"""The worker primitives: per-connection order, parallel connections, redelivery, draining."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from channelworks.exceptions import ChannelFull
from channelworks.layers import RedisChannelLayer, WorkReceiver

from .conftest import LayerFactory

HANG = Path(__file__).with_name("take_and_hang.py")


async def _work(
    receiver: WorkReceiver, seen: dict[str, list[int]], busy: set[str], overlaps: list[str]
) -> None:
    while True:
        delivery = await receiver.get(timeout=5)
        if delivery is None:
            return
        key = delivery.message["reply_channel"]
        if key in busy:
            overlaps.append(key)
        busy.add(key)
        await asyncio.sleep(random.uniform(0, 0.003))
        seen.setdefault(key, []).append(delivery.message["order"])
        busy.discard(key)
        await delivery.ack()


@pytest.mark.parametrize("capacity", [None, 10_000], ids=["default-capacity", "raised-capacity"])
async def test_each_connection_is_handled_in_order_one_at_a_time_across_workers(
    make_layer: LayerFactory, backend: str, capacity: int | None
) -> None:
    """With the default capacity the producer meets ``ChannelFull`` and sends again a moment
    later (as an interface's client would reconnect and resend): a refused send leaves nothing
    behind, so the order still holds."""
    config = {} if capacity is None else {"capacity": capacity}
    producer = make_layer(**config)
    workers = [producer] if backend == "memory" else [make_layer(**config) for _ in range(3)]
    receivers = [w.work_receiver(["websocket.receive"]) for w in workers]
    seen: dict[str, list[int]] = {}
    busy: set[str] = set()
    overlaps: list[str] = []
    runners = [
        asyncio.create_task(_work(receiver, seen, busy, overlaps))
        for receiver in receivers
        for _ in range(8)
    ]
    connections = [f"specific.interface!{n}" for n in range(20)]
    refused = 0
    for order in range(50):
        for connection in connections:
            message = {"reply_channel": connection, "order": order}
            while True:
                try:
                    await producer.send("websocket.receive", message)
                    break
                except ChannelFull:
                    refused += 1
                    await asyncio.sleep(0.01)
    print(f"{backend}, capacity {capacity or 'default'}: {refused} sends refused and repeated")
    await asyncio.gather(*runners)
    for receiver in receivers:
        await receiver.stop()
    assert overlaps == []
    assert seen == {connection: list(range(50)) for connection in connections}


async def test_a_worker_killed_after_taking_work_has_it_redelivered(redis_url: str) -> None:
    prefix = f"kill{time.monotonic_ns()}"
    layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix, lease_seconds=2)
    victim = subprocess.Popen(
        [sys.executable, str(HANG), redis_url, prefix], stdout=subprocess.PIPE, text=True
    )
    try:
        await asyncio.sleep(1.0)  # the victim owns every shard now
        await layer.send("jobs", {"n": 42})
        line = await asyncio.wait_for(asyncio.to_thread(victim.stdout.readline), 20)  # type: ignore[union-attr]
        assert line.split() == ["taken", "42"]
        victim.kill()
        killed_at = time.monotonic()
        receiver = layer.work_receiver(["jobs"])
        delivery = await receiver.get(timeout=15)
        took = time.monotonic() - killed_at
        assert delivery is not None and delivery.message == {"n": 42}
        await delivery.ack()
        assert await receiver.get(timeout=3) is None  # acked: not delivered again
        await receiver.stop()
        assert took < 2 * 2 + 2, f"redelivered after {took:.1f}s"
    finally:
        victim.kill()
        victim.wait()
        await layer.close()


async def test_graceful_stop_hands_untaken_work_to_the_next_worker(redis_url: str) -> None:
    first = RedisChannelLayer(hosts=[redis_url], prefix="drain", lease_seconds=2)
    second = RedisChannelLayer(hosts=[redis_url], prefix="drain", lease_seconds=2)
    try:
        for number in range(10):
            await first.send("jobs", {"n": number})
        leaving = first.work_receiver(["jobs"])
        taken = await leaving.get(timeout=5)
        assert taken is not None
        stopping = asyncio.create_task(leaving.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done()  # waits for the in-flight message to be acked
        await taken.ack()
        await asyncio.wait_for(stopping, 5)
        staying = second.work_receiver(["jobs"])
        rest = []
        while (delivery := await staying.get(timeout=4)) is not None:
            rest.append(delivery.message["n"])
            await delivery.ack()
        await staying.stop()
    finally:
        await first.close()
        await second.close()
    assert sorted([*rest, taken.message["n"]]) == list(range(10))
