"""The work shard count changes 16 -> 64 -> 16 while traffic flows: no message is lost or handed
out twice, each connection's messages are handled in the order they were sent, and workers
started before a change take the new shards without a restart.

Real redis-server and a real six-node Redis Cluster; four real worker processes
(``shard_worker.py``); the sender is a layer of its own that learns each change from its first
send to a sealed shard; the change is made from a third layer, as the operator does.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from channelworks.exceptions import ShardChangePending
from channelworks.layers import RedisChannelLayer
from channelworks.layers.redis import sharding
from tests.support.eventually import eventually_async

WORKER = Path(__file__).with_name("shard_worker.py")
CHANNEL = "test.work"
WORKERS = 4
CONNECTIONS = 24
SEND_PAUSE = 0.02  # per connection: about 1,000 messages a second in all, at most


@pytest.fixture(params=["redis", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_url" if request.param == "redis" else "cluster_url"))


def _statuses(logs: list[Path]) -> list[dict[str, object]]:
    found = []
    for log in logs:
        status = log.with_suffix(".shards")
        found.append(json.loads(status.read_text()) if status.exists() else {})
    return found


def _each_holds_its_share(logs: list[Path], count: int) -> None:
    statuses = _statuses(logs)
    assert all(status.get("count") == count for status in statuses), statuses
    held = [set(status["shards"]) for status in statuses]  # type: ignore[call-overload]
    assert sorted(len(shards) for shards in held) == [count // WORKERS] * WORKERS, statuses
    assert set().union(*held) == set(range(count)), statuses


async def _change_once_drained(changer: RedisChannelLayer, count: int) -> float:
    """Change the count as soon as the previous change has drained; returns when it did."""
    deadline = time.monotonic() + 60
    while True:
        try:
            await changer.set_work_shards(count)
            return time.time()
        except ShardChangePending:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def _handouts(logs: list[Path]) -> dict[str, list[tuple[float, int, int]]]:
    """Per connection: (time handed out, order, pid), sorted by time."""
    seen: dict[str, list[tuple[float, int, int]]] = defaultdict(list)
    for log in logs:
        for line in log.read_text().splitlines():
            connection, order, at, pid = line.split()
            seen[connection].append((float(at), int(order), int(pid)))
    return {connection: sorted(rows) for connection, rows in seen.items()}


async def test_sixteen_to_sixty_four_to_sixteen_mid_traffic(url: str, tmp_path: Path) -> None:
    prefix = f"reshard{secrets.token_hex(3)}"
    logs = [tmp_path / f"worker{n}.log" for n in range(WORKERS)]
    workers = [
        subprocess.Popen([sys.executable, str(WORKER), url, prefix, str(log)]) for log in logs
    ]
    sender = RedisChannelLayer(hosts=[url], prefix=prefix, capacity=100_000)
    changer = RedisChannelLayer(hosts=[url], prefix=prefix)
    sent: dict[str, int] = {f"specific.reshard!c{n}": 0 for n in range(CONNECTIONS)}
    stop = asyncio.Event()

    async def connection(name: str) -> None:
        while not stop.is_set():
            await sender.send(CHANNEL, {"reply_channel": name, "order": sent[name], "text": "x"})
            sent[name] += 1
            await asyncio.sleep(SEND_PAUSE)

    try:
        await eventually_async(lambda: _each_holds_its_share(logs, 16), timeout=60, interval=0.2)
        traffic = [asyncio.create_task(connection(name)) for name in sent]
        await asyncio.sleep(1.5)
        first_change = await _change_once_drained(changer, 64)
        # The workers started before the change pick the new shards up, 16 each.
        await eventually_async(lambda: _each_holds_its_share(logs, 64), timeout=60, interval=0.2)
        await asyncio.sleep(1.5)
        await _change_once_drained(changer, 16)
        await eventually_async(lambda: _each_holds_its_share(logs, 16), timeout=60, interval=0.2)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*traffic)
        total = sum(sent.values())

        def all_handed_out() -> None:
            handed = sum(len(rows) for rows in _handouts(logs).values())
            assert handed >= total, f"{handed} of {total} handed out"

        await eventually_async(all_handed_out, timeout=60, interval=0.5)

        async def old_epoch_retired() -> None:
            state = await changer.work_shards()
            assert state.draining is None and state.current.count == 16, state

        await eventually_async(old_epoch_retired, timeout=30, interval=0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        await sender.close()
        await changer.close()
    handouts = _handouts(logs)
    assert set(handouts) == set(sent)
    for name, rows in handouts.items():
        orders = [order for _, order, _ in rows]
        assert orders == list(range(sent[name])), f"{name}: lost, repeated or out of order"
    # Every worker kept taking work after the changes (none was left idle by them).
    for worker in workers:
        late = [at for rows in handouts.values() for at, _, pid in rows if pid == worker.pid]
        assert any(at > first_change for at in late), f"worker {worker.pid} took nothing new"
    assert min(sent.values()) > 100  # traffic really flowed across both changes


def test_a_new_shard_waits_for_the_old_shards_sharing_its_connections() -> None:
    assert sharding.depends_on(64, 16, 37) == [5]  # doubling twice: one old shard
    assert sharding.depends_on(16, 64, 5) == [5, 21, 37, 53]  # back: the four it came from
    assert sharding.depends_on(17, 16, 3) == list(range(16))  # coprime: every old shard
    for key in range(1000):  # the rule holds for every connection key
        assert key % 16 in sharding.depends_on(64, 16, key % 64)
        assert key % 64 in sharding.depends_on(16, 64, key % 16)


async def test_a_flush_forgets_the_shard_count(redis_url: str) -> None:
    prefix = f"reshard{secrets.token_hex(3)}"
    layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    worker = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    try:
        await layer.set_work_shards(64)
        await layer.flush()
        state = await layer.work_shards()
        assert state == sharding.ShardState(sharding.Epoch(0, 16))
        await layer.send(CHANNEL, {"reply_channel": "specific.f!1", "order": 0})
        receiver = worker.work_receiver([CHANNEL])
        delivery = await receiver.get(timeout=10)
        assert delivery is not None and delivery.message["order"] == 0
        await delivery.ack()
        await receiver.stop(timeout=2)
    finally:
        await layer.close()
        await worker.close()
