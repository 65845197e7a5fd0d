"""Reading what a Redis server did, to assert on the work a layer caused."""

from __future__ import annotations

import urllib.parse

import redis


def client_for(url: str) -> redis.Redis:
    parts = urllib.parse.urlsplit(url.replace("+cluster", ""))
    return redis.Redis(
        host=parts.hostname or "127.0.0.1", port=parts.port or 6379, password=parts.password
    )


def masters(cluster_url: str) -> list[redis.Redis]:
    """A plain client per master of the cluster ``cluster_url`` points into."""
    seed = client_for(cluster_url)
    password = seed.connection_pool.connection_kwargs.get("password")
    found = []
    for shard in seed.execute_command("CLUSTER SHARDS"):
        for node in shard[b"nodes"]:
            if node[b"role"] == b"master" and node[b"health"] == b"online":
                found.append(
                    redis.Redis(host=node[b"ip"].decode(), port=node[b"port"], password=password)
                )
    seed.close()
    return found


def commands_processed(client: redis.Redis) -> int:
    return int(client.info("stats")["total_commands_processed"])


def stream_entries(client: redis.Redis, prefix: str) -> int:
    """Messages waiting in the prefix's channel streams on one server."""
    total = 0
    for key in client.scan_iter(match=f"{{{prefix}*:q:*", count=1000):
        total += int(client.xlen(key))
    return total
