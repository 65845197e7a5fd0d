"""The planner, driven through whole lifecycles on a toy cluster (no Redis): what it decides."""

from __future__ import annotations

import pytest

from channelworks_operator import rediscluster
from channelworks_operator.rediscluster import actions as act
from channelworks_operator.rediscluster import planning, slots
from channelworks_operator.rediscluster.topology import Shape
from tests.rediscluster.fake_cluster import FakeCluster


def formed(shards: int, replicas: int, **options: bool) -> FakeCluster:
    cluster = FakeCluster(shards * (1 + replicas), **options)
    assert cluster.converge(Shape(shards, replicas)).converged
    cluster.applied.clear()
    return cluster


def layout(cluster: FakeCluster) -> dict[int, list[int]]:
    """Master pod ordinal -> its replicas' ordinals."""
    return {
        cluster.ordinal_of(master): sorted(
            cluster.ordinal_of(r) for r in cluster.replicas_of(master)
        )
        for master in sorted(cluster.masters(), key=cluster.ordinal_of)
    }


def spread(cluster: FakeCluster) -> list[int]:
    return sorted((len(m.slots) for m in cluster.masters()), reverse=True)


def kinds(applied: list[act.Action]) -> list[str]:
    return [type(action).__name__ for action in applied]


def test_empty_pods_are_formed_shard_by_shard() -> None:
    cluster = FakeCluster(6)

    last = cluster.converge(Shape(3, 1))

    assert last.converged and not last.waiting
    assert layout(cluster) == {0: [1], 2: [3], 4: [5]}
    assert spread(cluster) == [5462, 5461, 5461]
    assert kinds(cluster.applied) == ["Meet"] * 5 + ["AddSlots"] * 3 + ["Replicate"] * 3


def test_forming_waits_until_every_pod_is_ready() -> None:
    cluster = FakeCluster(6)
    cluster.pods[3] = None

    step = planning.plan(cluster.observation(), Shape(3, 1))

    assert step.actions == () and not step.converged
    assert "waiting for pods 3 to be ready before forming the cluster" in step.waiting


def test_a_formed_cluster_plans_nothing() -> None:
    cluster = formed(3, 1)

    step = planning.plan(cluster.observation(), Shape(3, 1))

    assert step == planning.Plan(converged=True)


def test_a_replica_that_comes_back_empty_is_forgotten_and_replicates_again() -> None:
    cluster = formed(3, 1)
    old = cluster.kill(3)
    cluster.start_empty(3)

    assert cluster.converge(Shape(3, 1)).converged

    assert kinds(cluster.applied) == ["Meet", "Forget", "Replicate"]
    assert old.node_id not in cluster.members
    assert layout(cluster) == {0: [1], 2: [3], 4: [5]}


def test_a_lost_node_is_not_forgotten_while_its_pod_is_not_ready() -> None:
    cluster = formed(3, 1)
    cluster.kill(3)

    step = planning.plan(cluster.observation(), Shape(3, 1))

    assert step.actions == () and not step.converged
    assert "pods 3 are not ready" in step.waiting


def test_a_master_that_comes_back_empty_becomes_the_replica_of_its_promoted_replica() -> None:
    cluster = formed(3, 1)
    old = cluster.kill(2)
    cluster.promote_replica_of(old)
    cluster.start_empty(2)

    assert cluster.converge(Shape(3, 1)).converged

    assert layout(cluster) == {0: [1], 3: [2], 4: [5]}


def test_a_failed_master_whose_replica_was_not_promoted_yet_is_failed_over() -> None:
    cluster = formed(3, 1)
    cluster.kill(2)
    cluster.start_empty(2)

    assert cluster.converge(Shape(3, 1)).converged

    assert kinds(cluster.applied) == ["Meet", "Failover", "Forget", "Replicate"]
    assert layout(cluster) == {0: [1], 3: [2], 4: [5]}


def test_slots_of_a_lost_master_without_replicas_go_to_the_pod_that_replaced_it() -> None:
    cluster = formed(3, 0)
    lost = cluster.kill(1)
    cluster.start_empty(1)

    assert cluster.converge(Shape(3, 0)).converged

    assert kinds(cluster.applied) == ["Meet", "Forget", "AddSlots"]
    replacement = cluster.pods[1]
    assert replacement is not None and replacement.slots == lost.slots
    assert spread(cluster) == [5462, 5461, 5461]


def test_adding_a_shard_moves_a_quarter_of_the_slots_and_every_key_to_it() -> None:
    cluster = formed(3, 1)
    keys = cluster.fill()
    cluster.grow(8)

    assert cluster.converge(Shape(4, 1)).converged

    assert layout(cluster) == {0: [1], 2: [3], 4: [5], 6: [7]}
    assert spread(cluster) == [4096] * 4
    assert cluster.total_keys() == keys
    moved = sum(slots.count(a.slots) for a in cluster.applied if isinstance(a, act.MoveSlots))
    assert moved == 4096


def test_slots_are_not_moved_while_a_new_pod_is_not_ready() -> None:
    cluster = formed(3, 1)
    cluster.grow(8)
    cluster.pods[7] = None

    last = cluster.converge(Shape(4, 1))

    assert not last.converged
    assert not any(isinstance(a, act.MoveSlots) for a in cluster.applied)
    assert "slots are rebalanced once every pod is ready" in last.waiting


@pytest.mark.parametrize("replica_migration", [True, False])
def test_removing_shards_drains_the_pods_above_the_shape_then_detaches_them(
    replica_migration: bool,
) -> None:
    cluster = formed(4, 1, replica_migration=replica_migration)
    keys = cluster.fill()

    assert cluster.converge(Shape(2, 1)).converged

    assert layout(cluster) == {0: [1], 2: [3]}
    assert spread(cluster) == [8192, 8192]
    assert cluster.total_keys() == keys
    assert all(pod is not None and pod.node_id not in cluster.members for pod in cluster.pods[4:])
    cluster.shrink(4)
    assert planning.plan(cluster.observation(), Shape(2, 1)) == planning.Plan(converged=True)


def test_more_replicas_per_shard_take_the_new_pods() -> None:
    cluster = formed(3, 1)
    cluster.grow(9)

    assert cluster.converge(Shape(3, 2)).converged

    assert all(len(replicas) == 2 for replicas in layout(cluster).values())
    assert not any(isinstance(a, act.MoveSlots | act.ResetNode) for a in cluster.applied)


def test_replicas_become_masters_when_shards_replace_replicas() -> None:
    cluster = formed(3, 1)
    keys = cluster.fill()

    assert cluster.converge(Shape(6, 0)).converged

    assert spread(cluster) == [2731] * 4 + [2730] * 2
    assert cluster.total_keys() == keys


def test_a_stranger_with_slots_is_left_alone_and_reported() -> None:
    cluster = formed(3, 1)
    cluster.grow(8)
    stranger = cluster.pods[6]
    assert stranger is not None
    stranger.slots = {1}  # serves a slot, but of no cluster we know

    step = planning.plan(cluster.observation(), Shape(4, 1))

    assert not any(getattr(a, "node_id", None) == stranger.node_id for a in step.actions)
    assert "pod 6 serves slots of another cluster; not touching it" in step.waiting


def test_a_migration_left_half_done_is_finished() -> None:
    cluster = formed(3, 1)
    source, target = cluster.pods[0], cluster.pods[2]
    assert source is not None and target is not None
    source.open_slots = [f"[100->-{target.node_id}]"]
    target.open_slots = [f"[100-<-{source.node_id}]"]

    step = planning.plan(cluster.observation(), Shape(3, 1))

    assert len(step.actions) == 1
    move = step.actions[0]
    assert isinstance(move, act.MoveSlots)
    assert (move.source_id, move.target_id, move.slots) == (
        source.node_id,
        target.node_id,
        ((100, 100),),
    )


def test_a_migration_whose_slot_already_changed_owner_is_closed_everywhere() -> None:
    cluster = formed(3, 1)
    source, target = cluster.pods[0], cluster.pods[2]
    assert source is not None and target is not None
    source.slots.discard(100)
    target.slots.add(100)
    source.open_slots = [f"[100->-{target.node_id}]"]

    step = planning.plan(cluster.observation(), Shape(3, 1))

    assert step.actions == (
        act.SetSlotOwner(
            ((100, 100),), target.node_id, ("127.0.0.1:7000", "127.0.0.1:7002", "127.0.0.1:7004")
        ),
    )


def test_a_migration_to_a_node_that_is_gone_is_abandoned() -> None:
    cluster = formed(3, 1)
    source = cluster.pods[0]
    assert source is not None
    source.open_slots = ["[100->-" + "f" * 40 + "]"]

    step = planning.plan(cluster.observation(), Shape(3, 1))

    assert step.actions == (act.StabilizeSlots("127.0.0.1:7000", ((100, 100),)),)


def test_fewer_replicas_per_shard_drain_the_pods_above_the_shape() -> None:
    cluster = formed(3, 2)
    keys = cluster.fill()

    assert cluster.converge(Shape(3, 1)).converged

    assert spread(cluster) == [5462, 5461, 5461]
    assert all(len(replicas) == 1 for replicas in layout(cluster).values())
    assert cluster.total_keys() == keys
    assert all(pod is not None and pod.node_id not in cluster.members for pod in cluster.pods[6:])


def test_a_cluster_laid_out_by_redis_cli_is_left_as_it_is() -> None:
    cluster = FakeCluster(6)  # masters 0, 1, 2 and replicas 3, 4, 5, as --cluster create does
    nodes = [pod for pod in cluster.pods if pod is not None]
    for node, ranges in zip(nodes[:3], slots.even_split(3), strict=True):
        node.slots = set(slots.expand(ranges))
    for replica, master in zip(nodes[3:], nodes[:3], strict=True):
        replica.master_id = master.node_id
    cluster.members = {node.node_id: node for node in nodes}

    step = planning.plan(cluster.observation(), Shape(3, 1))

    assert step == planning.Plan(converged=True)


def test_statefulset_keeps_its_pods_until_the_shards_above_the_shape_are_drained() -> None:
    shape = Shape(2, 1)
    assert rediscluster.statefulset_replicas(0, shape, converged=False) == 4
    assert rediscluster.statefulset_replicas(8, shape, converged=False) == 8
    assert rediscluster.statefulset_replicas(8, shape, converged=True) == 4
    assert rediscluster.statefulset_replicas(2, shape, converged=True) == 4
