"""Resuming: slot migrations left half done (an operator killed mid-reshard) are finished on the
next run, and every key of those slots is still there."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from redis.crc import key_slot

from channelworks_operator import rediscluster
from tests.rediscluster.conftest import (
    PASSWORD,
    client,
    missing_keys,
    my_id,
    shards,
    write_keys,
)
from tests.rediscluster.nodes import HOST, RawNodes
from tests.support.eventually import eventually_async

NodesFactory = Callable[[int], RawNodes]
SHAPE = rediscluster.Shape(3, 1)


def open_slots(address: str) -> bool:
    with client(address) as node:
        return b"[" in node.execute_command("CLUSTER", "NODES")


def keys_in_slots(first: int, last: int, per_slot: int) -> dict[str, str]:
    found: dict[int, int] = {}
    keys: dict[str, str] = {}
    index = 0
    while len(keys) < (last - first + 1) * per_slot:
        key = f"key:{index}"
        slot = key_slot(key.encode())
        if first <= slot <= last and found.get(slot, 0) < per_slot:
            found[slot] = found.get(slot, 0) + 1
            keys[key] = f"value-{index}"
        index += 1
    return keys


async def test_half_done_migrations_are_finished_without_losing_keys(
    raw_nodes: NodesFactory,
) -> None:
    nodes = raw_nodes(6)
    assert (await rediscluster.ensure(nodes.addresses(), SHAPE, password=PASSWORD)).converged
    source, target = nodes.nodes[0], nodes.nodes[2]  # pod 0 serves slots 0-5461
    source_id, target_id = my_id(source.address), my_id(target.address)
    keys = keys_in_slots(0, 29, per_slot=4)
    await write_keys(nodes.addresses(), keys)

    with client(source.address) as src, client(target.address) as dst:
        for slot in range(30):
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        for slot in range(20):  # slots 0-9 half moved, 10-19 fully moved, 20-29 not at all
            moving = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            moving = moving[:2] if slot < 10 else moving
            src.execute_command(
                "MIGRATE", HOST, target.port, "", 0, 5000, "AUTH", PASSWORD, "KEYS", *moving
            )
        for slot in range(10, 15):  # and handed over, but only the target knows
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    result = await rediscluster.ensure(nodes.addresses(), SHAPE, password=PASSWORD)

    assert result.converged, result.waiting
    assert result.status.open_slots == 0
    kinds = {type(action).__name__ for action in result.actions}
    assert "MoveSlots" in kinds
    for pod in nodes.addresses():
        assert pod is not None
        with client(pod) as node:
            assert b"[" not in node.execute_command("CLUSTER", "NODES")  # no open slot left
    assert await missing_keys(nodes.addresses(), keys) == []
    assert sorted(s.slots for s in shards(source.address)) == [5461, 5461, 5462]


async def test_a_reshard_cancelled_midway_is_resumed_by_the_next_run(
    raw_nodes: NodesFactory,
) -> None:
    nodes = raw_nodes(4)
    three = rediscluster.Shape(3, 0)
    assert (await rediscluster.ensure(nodes.addresses(3), three, password=PASSWORD)).converged
    keys = {f"key:{i}": f"value-{i}" for i in range(3000)}
    await write_keys(nodes.addresses(3), keys)
    four = rediscluster.Shape(4, 0)

    reshard = asyncio.create_task(rediscluster.ensure(nodes.addresses(), four, password=PASSWORD))
    await eventually_async(lambda: open_slots(nodes.nodes[3].address), timeout=60)
    reshard.cancel()  # the operator dies in the middle of moving slots
    with contextlib.suppress(asyncio.CancelledError):
        await reshard
    # A budget far below what moving a quarter of the slots takes: the run stops between batches.
    budgeted = await rediscluster.ensure(nodes.addresses(), four, password=PASSWORD, timeout=0.05)
    resumed = await rediscluster.ensure(nodes.addresses(), four, password=PASSWORD)

    assert not budgeted.converged
    assert any("time budget" in reason for reason in budgeted.waiting), budgeted.waiting
    assert resumed.converged, resumed.waiting
    assert [s.slots for s in shards(nodes.nodes[0].address)] == [4096] * 4
    assert await missing_keys(nodes.addresses(), keys) == []
