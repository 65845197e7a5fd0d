"""Raw, unformed cluster nodes (the pods of a StatefulSet) and ways to look at what they became.

The checks here read the servers with plain redis-py (``CLUSTER SHARDS``, ``CLUSTER INFO``) and a
real cluster client, not with the operator's own parser, so a test sees what a user would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest
import redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from tests.rediscluster.nodes import HOST, RawNodes

PASSWORD = "cluster-s3cret"


@pytest.fixture
def raw_nodes() -> Iterator[Callable[[int], RawNodes]]:
    """``raw_nodes(n)``: start ``n`` empty cluster-enabled redis-servers (password protected)."""
    started: list[RawNodes] = []

    def start(count: int) -> RawNodes:
        nodes = RawNodes(count, password=PASSWORD)
        started.append(nodes)
        return nodes

    yield start
    for nodes in started:
        nodes.stop()


def client(address: str) -> redis.Redis:
    host, _, port = address.rpartition(":")
    return redis.Redis(host=host, port=int(port), password=PASSWORD, socket_timeout=5)


@dataclass(frozen=True)
class Shard:
    master: str
    replicas: tuple[str, ...]
    slots: int


def shards(address: str) -> list[Shard]:
    """``CLUSTER SHARDS`` as one node sees it: the masters serving slots and their replicas."""
    with client(address) as seed:
        reply = seed.execute_command("CLUSTER SHARDS")
    found = []
    for shard in reply:
        ranges = shard[b"slots"]
        count = sum(ranges[i + 1] - ranges[i] + 1 for i in range(0, len(ranges), 2))
        masters = [n for n in shard[b"nodes"] if n[b"role"] == b"master"]
        replicas = [n for n in shard[b"nodes"] if n[b"role"] == b"replica"]
        if not count:
            continue
        (master,) = masters
        found.append(
            Shard(
                master=f"{HOST}:{master[b'port']}",
                replicas=tuple(sorted(f"{HOST}:{n[b'port']}" for n in replicas)),
                slots=count,
            )
        )
    return sorted(found, key=lambda shard: shard.master)


def cluster_info(address: str) -> dict[str, str]:
    with client(address) as node:
        text = node.execute_command("CLUSTER", "INFO").decode()
    return dict(line.strip().split(":", 1) for line in text.splitlines() if ":" in line)


def known_ids(address: str) -> set[str]:
    with client(address) as node:
        text = node.execute_command("CLUSTER", "NODES").decode()
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def my_id(address: str) -> str:
    with client(address) as node:
        return str(node.execute_command("CLUSTER", "MYID").decode())


def cluster_client(addresses: Sequence[str | None]) -> RedisCluster:
    startup = []
    for address in addresses:
        if address is not None:
            host, _, port = address.rpartition(":")
            startup.append(ClusterNode(host, int(port)))
    return RedisCluster(startup_nodes=startup, password=PASSWORD)


async def write_keys(addresses: Sequence[str | None], keys: dict[str, str]) -> None:
    async with cluster_client(addresses) as cluster, cluster.pipeline() as pipe:
        for key, value in keys.items():
            pipe.set(key, value)
        await pipe.execute()


async def missing_keys(addresses: Sequence[str | None], keys: dict[str, str]) -> list[str]:
    """The keys that do not read back with their value through a cluster client."""
    async with cluster_client(addresses) as cluster, cluster.pipeline() as pipe:
        names = list(keys)
        for key in names:
            pipe.get(key)
        values = await pipe.execute()
    return [k for k, v in zip(names, values, strict=True) if v is None or v.decode() != keys[k]]
