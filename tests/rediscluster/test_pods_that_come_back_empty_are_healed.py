"""Healing: a pod that comes back without its data (a new node id) rejoins as a replica, the old
id is forgotten everywhere, and nothing is forgotten while the pod is still away."""

from __future__ import annotations

from collections.abc import Callable

from channelworks_operator import rediscluster
from tests.rediscluster.conftest import (
    PASSWORD,
    known_ids,
    missing_keys,
    my_id,
    shards,
    write_keys,
)
from tests.rediscluster.nodes import RawNodes
from tests.support.eventually import eventually

NodesFactory = Callable[[int], RawNodes]
SHAPE = rediscluster.Shape(3, 1)


async def formed(raw_nodes: NodesFactory) -> RawNodes:
    nodes = raw_nodes(6)
    result = await rediscluster.ensure(nodes.addresses(), SHAPE, password=PASSWORD)
    assert result.converged, result.waiting
    return nodes


async def test_a_replica_that_comes_back_empty_replicates_its_master_again(
    raw_nodes: NodesFactory,
) -> None:
    """The pod keeps its address: the old id is recognised as replaced at once."""
    nodes = await formed(raw_nodes)
    replica, master = nodes.nodes[3], nodes.nodes[2]
    old_id = my_id(replica.address)
    replica.kill()

    away = await rediscluster.ensure(nodes.addresses(), SHAPE, password=PASSWORD, timeout=5)
    assert away.actions == () and not away.converged
    assert "pods 3 are not ready" in away.waiting
    assert old_id in known_ids(master.address)  # not forgotten while the pod is away

    replica.restart_empty()
    new_id = my_id(replica.address)
    assert new_id != old_id
    healed = await rediscluster.ensure(nodes.addresses(), SHAPE, password=PASSWORD)

    assert healed.converged, healed.waiting
    assert [type(a).__name__ for a in healed.actions] == ["Meet", "Forget", "Replicate"]
    assert (master.address, (replica.address,)) in [
        (s.master, s.replicas) for s in shards(master.address)
    ]
    for pod in nodes.addresses():
        assert pod is not None
        assert old_id not in known_ids(pod)
        assert new_id in known_ids(pod)
    assert healed.status.ready_nodes == 6 and healed.status.replicas == 3


async def test_a_master_that_comes_back_empty_after_failover_becomes_a_replica(
    raw_nodes: NodesFactory,
) -> None:
    nodes = await formed(raw_nodes)
    keys = {f"key:{i}": str(i) for i in range(1000)}
    await write_keys(nodes.addresses(), keys)
    master, replica = nodes.nodes[0], nodes.nodes[1]
    master.kill()

    def replica_promoted() -> None:
        assert replica.address in [s.master for s in shards(replica.address)]

    eventually(replica_promoted, timeout=30)  # Redis' own failover, before the pod is back
    master.restart_empty()
    healed = await rediscluster.ensure(nodes.addresses(), SHAPE, password=PASSWORD)

    assert healed.converged, healed.waiting
    layout = {s.master: s.replicas for s in shards(replica.address)}
    assert layout[replica.address] == (master.address,)
    assert sorted(len(r) for r in layout.values()) == [1, 1, 1]
    assert await missing_keys(nodes.addresses(), keys) == []


async def test_a_master_without_replicas_that_comes_back_empty_takes_its_slots_again(
    raw_nodes: NodesFactory,
) -> None:
    nodes = raw_nodes(3)
    shape = rediscluster.Shape(3, 0)
    assert (await rediscluster.ensure(nodes.addresses(), shape, password=PASSWORD)).converged
    lost = nodes.nodes[1]
    lost.kill()
    lost.restart_empty()

    healed = await rediscluster.ensure(nodes.addresses(), shape, password=PASSWORD)

    assert healed.converged, healed.waiting
    assert healed.status.cluster_state == "ok" and healed.status.slots_ok == 16384
    assert sorted(s.slots for s in shards(lost.address)) == [5461, 5461, 5462]


async def test_a_replica_that_comes_back_empty_on_a_new_address_replicates_again(
    raw_nodes: NodesFactory,
) -> None:
    """The pod comes back with another IP: the old id is forgotten once the cluster failed it."""
    nodes = await formed(raw_nodes)
    replica, master = nodes.nodes[5], nodes.nodes[4]
    old_id, old_address = my_id(replica.address), replica.address
    replica.kill()
    replica.restart_empty(new_address=True)
    assert replica.address != old_address

    healed = await rediscluster.ensure(nodes.addresses(), SHAPE, password=PASSWORD)

    assert healed.converged, healed.waiting
    assert (master.address, (replica.address,)) in [
        (s.master, s.replicas) for s in shards(master.address)
    ]
    for pod in nodes.addresses():
        assert pod is not None
        assert old_id not in known_ids(pod)
