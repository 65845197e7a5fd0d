"""Parsing ``CLUSTER NODES`` and slot arithmetic: the pure pieces the planner stands on."""

from __future__ import annotations

import pytest

from channelworks_operator import rediscluster
from channelworks_operator.rediscluster import slots, status, topology

MASTER = (
    "07c37dfeb235213a872192d90877d0cd55635b91 10.0.0.5:6379@16379,chat-redis-0 "
    "myself,master - 0 1426238317239 4 connected 0-100 102 5461-10922 "
    "[101->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca] "
    "[103-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]"
)
REPLICA = (
    "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 10.0.0.6:6379@16379 slave,fail "
    "07c37dfeb235213a872192d90877d0cd55635b91 0 1426238316232 5 disconnected"
)


def test_a_master_line_with_migrations_is_parsed() -> None:
    entry = topology.NodeEntry.parse(MASTER)

    assert (entry.host, entry.port, entry.bus_port) == ("10.0.0.5", 6379, 16379)
    assert entry.myself and entry.is_master and not entry.is_replica
    assert entry.slots == ((0, 100), (102, 102), (5461, 10922))
    assert entry.slot_count == 101 + 1 + 5462
    assert entry.migrating == ((101, "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"),)
    assert entry.importing == ((103, "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"),)
    assert entry.config_epoch == 4 and entry.connected


def test_a_failed_replica_line_is_parsed() -> None:
    entry = topology.NodeEntry.parse(REPLICA)

    assert entry.is_replica and entry.failed and entry.lost and not entry.connected
    assert entry.master_id == "07c37dfeb235213a872192d90877d0cd55635b91"
    assert entry.slots == ()


def test_a_fresh_node_without_an_ip_yet_is_parsed() -> None:
    entry = topology.NodeEntry.parse(
        "ac96bd6657fce9ef0401f3da921e3b7d6fb70de0 :43087@38503 myself,master - 0 0 0 connected"
    )

    assert (entry.host, entry.port, entry.bus_port) == ("", 43087, 38503)


def test_a_garbled_line_is_a_parse_error() -> None:
    with pytest.raises(rediscluster.RedisClusterError, match="unexpected CLUSTER NODES line"):
        topology.NodeEntry.parse("not a node line")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.1.2.3:7000", ("10.1.2.3", 7000)),
        ("chat-redis-0.chat-redis.demo.svc", ("chat-redis-0.chat-redis.demo.svc", 6379)),
        ("[fd00::5]:6380", ("fd00::5", 6380)),
    ],
)
def test_pod_addresses_are_split(address: str, expected: tuple[str, int]) -> None:
    assert topology.split_address(address) == expected


def test_shapes_that_cannot_be_a_cluster_are_refused() -> None:
    with pytest.raises(rediscluster.InvalidShape, match="shards must be between 1 and 16384"):
        rediscluster.Shape(0, 1)
    with pytest.raises(rediscluster.InvalidShape, match="replicasPerShard must be 0 or more"):
        rediscluster.Shape(3, -1)
    assert rediscluster.Shape(3, 2).size == 9


def test_slots_split_evenly_and_cover_everything() -> None:
    for masters in (1, 2, 3, 4, 7):
        split = slots.even_split(masters)
        assert sum(slots.count(r) for r in split) == slots.SLOTS
        assert slots.to_ranges(s for r in split for s in slots.expand(r)) == ((0, 16383),)
        assert max(map(slots.count, split)) - min(map(slots.count, split)) <= 1


def test_ranges_merge_and_format() -> None:
    assert slots.to_ranges([5, 3, 4, 9]) == ((3, 5), (9, 9))
    assert slots.merge([(10, 12), (0, 4), (5, 9)]) == ((0, 12),)
    assert slots.format_ranges(((0, 5460), (5462, 5462))) == "0-5460,5462"


def test_status_of_nothing_reachable() -> None:
    observation = topology.Observation((topology.PodState(0, None, error="pod is not ready"),))

    summary = status.summarize(observation)

    assert summary.cluster_state == "unreachable" and summary.ready_nodes == 0
    assert "0 nodes ready" in rediscluster.describe(summary)
