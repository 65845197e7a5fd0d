"""Redis fixtures start real servers: a standalone one and a six-node cluster that fails over."""

from __future__ import annotations

import socket

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.retry import Retry

from tests.support import redis_servers
from tests.support.eventually import eventually

Address = redis_servers.Address


def _cluster_client(seed: Address) -> RedisCluster:
    return RedisCluster(host=seed[0], port=seed[1], decode_responses=True, socket_timeout=5)


def _replica_of(cluster: redis_servers.RedisClusterNodes, master: Address) -> Address:
    """The node that replicates ``master``, as each node says of itself: one node's view of the
    others (``replicas()``) can flag a replica as failing for a moment on a busy machine
    (a missed ping within the short test node timeout), which hid the heir once."""
    for node in cluster.nodes_running:
        replication = cluster.info(node, "replication")
        if replication.get("role") != "slave":
            continue
        if (replication["master_host"], int(replication["master_port"])) == master:
            return node
    raise AssertionError(f"no replica follows {master}")


def test_cluster_has_three_masters_serving_every_slot_and_three_synced_replicas(
    redis_cluster: redis_servers.RedisClusterNodes,
) -> None:
    masters, replicas = redis_cluster.masters(), redis_cluster.replicas()
    assert len(set(masters)) == 3 and len(set(replicas)) == 3
    assert set(masters) | set(replicas) == set(redis_cluster.startup_nodes)
    for node in redis_cluster.startup_nodes:
        info = redis_cluster.cluster_info(node)
        assert info["cluster_state"] == "ok", (node, info)
        assert info["cluster_slots_ok"] == "16384", (node, info)
        assert info["cluster_size"] == "3" and info["cluster_known_nodes"] == "6", (node, info)
    for host, port in masters:
        replication = redis.Redis(host=host, port=port).info("replication")
        assert replication["role"] == "master" and replication["connected_slaves"] == 1
        assert replication["slave0"]["state"] == "online", replication
    for host, port in replicas:
        replication = redis.Redis(host=host, port=port).info("replication")
        assert replication["role"] == "slave" and replication["master_link_status"] == "up"


def test_a_cluster_client_reaches_every_master_through_the_url(
    cluster_url: str, redis_cluster: redis_servers.RedisClusterNodes
) -> None:
    host, _, port = cluster_url.removeprefix("redis+cluster://").rpartition(":")
    client = _cluster_client((host, int(port)))
    try:
        keys = [f"key-{n}" for n in range(60)]
        for key in keys:
            client.set(key, key.upper())
        assert [client.get(key) for key in keys] == [key.upper() for key in keys]
    finally:
        client.close()
    for master_host, master_port in redis_cluster.masters():
        assert redis.Redis(host=master_host, port=master_port).dbsize() > 0


def test_killing_a_master_promotes_its_replica_and_the_cluster_recovers(
    killable_redis_cluster: redis_servers.RedisClusterNodes,
) -> None:
    cluster = killable_redis_cluster
    doomed = cluster.masters()[0]  # serves slot 0
    heir = _replica_of(cluster, doomed)
    key = next(f"k{n}" for n in range(10_000) if key_slot(f"k{n}".encode()) < 100)
    client = _cluster_client(heir)
    client.set(key, "survives")
    client.close()
    eventually(lambda: "keys=1" in cluster.cli(heir, "INFO", "keyspace"), message="replicated")

    assert cluster.kill_master(0) == doomed
    new_masters = cluster.wait_for_failover()

    assert heir in new_masters and doomed not in new_masters and len(new_masters) == 3
    assert cluster.url != f"redis+cluster://{doomed[0]}:{doomed[1]}"  # url names a live node
    for node in cluster.startup_nodes:
        if node != doomed:
            assert cluster.cluster_info(node)["cluster_state"] == "ok"
    client = _cluster_client(heir)
    try:
        assert client.get(key) == "survives"
    finally:
        client.close()

    cluster.restart(doomed)  # the old master rejoins as the replica of its heir
    assert cluster.info(doomed, "replication")["role"] == "slave"
    assert _replica_of(cluster, heir) == doomed


def test_standalone_server_with_requirepass_refuses_clients_without_it() -> None:
    with redis_servers.RedisServer(requirepass="s3cret pass:word") as server:
        assert redis.Redis.from_url(server.url).ping() is True
        for password in (None, "wrong"):
            client = redis.Redis(
                host=server.host, port=server.port, password=password, retry=Retry(NoBackoff(), 0)
            )
            with pytest.raises(redis.AuthenticationError):
                client.ping()
    assert not server.running


def test_a_port_taken_before_the_server_binds_it_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    squatter = socket.socket()
    squatter.bind((redis_servers.HOST, 0))
    taken = int(squatter.getsockname()[1])
    offered = iter([taken])
    real_free_port = redis_servers.free_port
    monkeypatch.setattr(redis_servers, "free_port", lambda: next(offered, None) or real_free_port())
    try:
        with redis_servers.RedisServer() as server:
            assert server.port != taken
            assert server.cli("PING") == "PONG"
    finally:
        squatter.close()


def test_an_earlier_test_leaves_keys_behind(
    redis_url: str, cluster_url: str, redis_cluster: redis_servers.RedisClusterNodes
) -> None:
    redis.Redis.from_url(redis_url).set("left-by-an-earlier-test", 1)
    client = _cluster_client(redis_cluster.masters()[0])
    client.set("left-by-an-earlier-test", 1)
    client.close()


def test_the_next_test_gets_flushed_servers(
    redis_url: str, cluster_url: str, redis_cluster: redis_servers.RedisClusterNodes
) -> None:
    # Runs after the test above in the same process (so on the same servers) unless reordered.
    assert redis.Redis.from_url(redis_url).dbsize() == 0
    for host, port in redis_cluster.masters():
        assert redis.Redis(host=host, port=port).dbsize() == 0
