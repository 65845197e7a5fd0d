"""On a Redis Cluster the layer routes its own calls: when a slot moves to another master
(a reshard) or a master dies (a failover), sends and receives follow it with no error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
from redis.crc import key_slot

from channelworks.layers import RedisChannelLayer, naming
from tests.support import redis_servers

NORMAL_CHANNEL = "moving.work"


def _client(address: redis_servers.Address) -> redis.Redis:
    return redis.Redis(host=address[0], port=address[1])


def _owner(cluster: redis_servers.RedisClusterNodes, slot: int) -> redis_servers.Address:
    for start, end, master, *_ in _client(cluster.masters()[0]).execute_command("CLUSTER SLOTS"):
        if start <= slot <= end:
            return (master[0].decode(), int(master[1]))
    raise AssertionError(f"slot {slot} has no owner")


def _begin_moving_slot(
    cluster: redis_servers.RedisClusterNodes, slot: int, target: redis_servers.Address
) -> str:
    """Migrate one slot's keys as a reshard does (IMPORTING/MIGRATING, MIGRATE); the slot is
    still the old master's until ``_finish_moving_slot``. Returns the target's node id."""
    source = _owner(cluster, slot)
    source_client, target_client = _client(source), _client(target)
    source_id = source_client.execute_command("CLUSTER MYID").decode()
    target_id: str = target_client.execute_command("CLUSTER MYID").decode()
    target_client.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
    source_client.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
    while keys := source_client.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
        source_client.execute_command("MIGRATE", *target, "", 0, 5000, "KEYS", *keys)
    return target_id


def _finish_moving_slot(
    cluster: redis_servers.RedisClusterNodes, slot: int, target_id: str
) -> None:
    for master in cluster.masters():
        _client(master).execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)


def _slots_of(layer: RedisChannelLayer, process_channel: str) -> tuple[int, int]:
    """The slot of the process's inbox and of the normal channel's stream."""
    head, _ = naming.split_process_specific(process_channel)
    inbox = layer.layout.inbox(naming.process_of(head))
    shard = layer.layout.shard_for(NORMAL_CHANNEL, None)
    stream = layer.layout.stream(shard, NORMAL_CHANNEL)
    return key_slot(inbox.encode()), key_slot(stream.encode())


async def _round_trip(
    sender: RedisChannelLayer, receiver: RedisChannelLayer, process_channel: str, number: int
) -> None:
    await sender.send(process_channel, {"type": "x", "n": number})
    await sender.send(NORMAL_CHANNEL, {"type": "x", "n": number})
    by_process = await asyncio.wait_for(receiver.receive(process_channel), 30)
    normal = await asyncio.wait_for(receiver.receive(NORMAL_CHANNEL), 30)
    assert (by_process["n"], normal["n"]) == (number, number)


Pair = tuple[RedisChannelLayer, RedisChannelLayer, str]


@pytest.fixture
async def pair(
    killable_redis_cluster: redis_servers.RedisClusterNodes,
) -> AsyncIterator[Pair]:
    """A sender and a receiver on a private cluster, with the receiver's process channel, after
    a first round trip."""
    sender = RedisChannelLayer(hosts=[killable_redis_cluster.url], prefix="moving")
    receiver = RedisChannelLayer(hosts=[killable_redis_cluster.url], prefix="moving")
    try:
        process_channel = await receiver.new_channel()
        await _round_trip(sender, receiver, process_channel, 0)
        yield sender, receiver, process_channel
    finally:
        await sender.close()
        await receiver.close()


async def test_sends_and_receives_follow_slots_moved_to_another_master(
    killable_redis_cluster: redis_servers.RedisClusterNodes, pair: Pair
) -> None:
    sender, receiver, process_channel = pair
    for number, slot in enumerate(_slots_of(receiver, process_channel), start=1):
        # The receiver's readers sit blocked on the old master while their slot moves away.
        owner = _owner(killable_redis_cluster, slot)
        target = next(m for m in killable_redis_cluster.masters() if m != owner)
        target_id = await asyncio.to_thread(
            _begin_moving_slot, killable_redis_cluster, slot, target
        )
        # Mid-migration the old master answers ASK for keys it no longer has.
        await sender.send(process_channel, {"type": "x", "n": -number})
        await sender.send(NORMAL_CHANNEL, {"type": "x", "n": -number})
        await asyncio.to_thread(_finish_moving_slot, killable_redis_cluster, slot, target_id)
        assert _owner(killable_redis_cluster, slot) == target
        sent_mid_migration = [
            (await asyncio.wait_for(receiver.receive(channel), 30))["n"]
            for channel in (process_channel, NORMAL_CHANNEL)
        ]
        assert sent_mid_migration == [-number, -number]
        await _round_trip(sender, receiver, process_channel, number)


async def test_receives_resume_after_the_master_holding_them_is_killed(
    killable_redis_cluster: redis_servers.RedisClusterNodes, pair: Pair
) -> None:
    sender, receiver, process_channel = pair
    inbox_slot, _ = _slots_of(receiver, process_channel)
    owner = _owner(killable_redis_cluster, inbox_slot)
    await asyncio.to_thread(killable_redis_cluster.kill, owner)
    await asyncio.to_thread(killable_redis_cluster.wait_for_failover, 30)
    assert _owner(killable_redis_cluster, inbox_slot) != owner
    await _round_trip(sender, receiver, process_channel, 1)
