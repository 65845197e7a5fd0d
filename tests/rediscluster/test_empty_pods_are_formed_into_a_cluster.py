"""Forming: empty pods become a cluster once all are ready; a formed cluster is left alone."""

from __future__ import annotations

from collections.abc import Callable

from channelworks_operator import rediscluster
from tests.rediscluster.conftest import (
    PASSWORD,
    cluster_info,
    missing_keys,
    shards,
    write_keys,
)
from tests.rediscluster.nodes import RawNodes

NodesFactory = Callable[[int], RawNodes]


async def test_six_empty_pods_become_three_masters_with_one_replica_each(
    raw_nodes: NodesFactory,
) -> None:
    nodes = raw_nodes(6)
    pods = nodes.addresses()

    result = await rediscluster.ensure(pods, rediscluster.Shape(3, 1), password=PASSWORD)

    assert result.converged, result.waiting
    assert result.status == rediscluster.ClusterStatus(
        ready_nodes=6,
        nodes=6,
        cluster_state="ok",
        slots_assigned=16384,
        slots_ok=16384,
        masters=3,
        replicas=3,
        open_slots=0,
    )
    for pod in pods:
        assert pod is not None
        info = cluster_info(pod)
        assert (info["cluster_state"], info["cluster_slots_ok"], info["cluster_known_nodes"]) == (
            "ok",
            "16384",
            "6",
        )
    layout = shards(str(pods[0]))
    # Shard by shard in StatefulSet order: pods 0, 2, 4 serve; 1, 3, 5 replicate them.
    assert [(s.master, s.replicas) for s in layout] == sorted(
        (str(pods[i]), (str(pods[i + 1]),)) for i in (0, 2, 4)
    )
    assert sorted(s.slots for s in layout) == [5461, 5461, 5462]
    keys = {f"key:{i}": str(i) for i in range(100)}
    await write_keys(pods, keys)
    assert await missing_keys(pods, keys) == []


async def test_ensure_on_a_formed_cluster_does_nothing(raw_nodes: NodesFactory) -> None:
    nodes = raw_nodes(6)
    shape = rediscluster.Shape(3, 1)
    first = await rediscluster.ensure(nodes.addresses(), shape, password=PASSWORD)
    assert first.converged and first.changed

    again = await rediscluster.ensure(nodes.addresses(), shape, password=PASSWORD)

    assert again.actions == ()
    assert again.converged and again.waiting == ()


async def test_forming_waits_until_every_pod_is_ready(raw_nodes: NodesFactory) -> None:
    nodes = raw_nodes(6)
    nodes.nodes[4].kill()

    result = await rediscluster.ensure(
        nodes.addresses(), rediscluster.Shape(3, 1), password=PASSWORD, timeout=5
    )

    assert result.actions == () and not result.converged
    assert result.waiting == ("waiting for pods 4 to be ready before forming the cluster",)
    assert result.status.cluster_state == "unformed"
    for pod in nodes.addresses():
        if pod is not None:
            assert cluster_info(pod)["cluster_known_nodes"] == "1"


async def test_a_wrong_password_is_reported_not_raised(raw_nodes: NodesFactory) -> None:
    nodes = raw_nodes(3)

    result = await rediscluster.ensure(
        nodes.addresses(), rediscluster.Shape(3, 0), password="wrong", timeout=5
    )

    assert result.actions == () and not result.converged
    assert result.waiting[0] == "no Redis pod is reachable"
    assert "pod 0: AuthenticationError" in result.waiting[1]
    assert result.status.cluster_state == "unreachable"
