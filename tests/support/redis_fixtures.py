"""pytest plugin: real Redis servers for tests.

Enable it in the top-level ``tests/conftest.py``::

    pytest_plugins = ["tests.support.redis_fixtures"]

Servers start on first use, on free loopback ports, once per pytest process (so once per xdist
worker), and stop at the end of the session:

- ``redis_server`` / ``redis_cluster`` (session): the ``RedisServer`` / ``RedisClusterNodes``
  objects, for tests that look at the servers themselves.
- ``redis_url`` (per test): ``redis://127.0.0.1:PORT/0`` of the standalone server, flushed first.
- ``cluster_url`` (per test): ``redis+cluster://127.0.0.1:PORT`` of the six-node cluster, every
  master flushed first.
- ``killable_redis_cluster`` (per test): a fresh private six-node cluster, for tests that kill or
  restart nodes; it is thrown away afterwards, so the shared one stays whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import redis_servers


@pytest.fixture(scope="session")
def redis_server() -> Iterator[redis_servers.RedisServer]:
    """One standalone redis-server shared by the whole session."""
    with redis_servers.RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[redis_servers.RedisClusterNodes]:
    """A six-node cluster (3 masters, 3 replicas) shared by the whole session: do not kill nodes."""
    with redis_servers.RedisClusterNodes() as cluster:
        yield cluster


@pytest.fixture
def redis_url(redis_server: redis_servers.RedisServer) -> str:
    """The standalone server's URL, with every database flushed before the test."""
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def cluster_url(redis_cluster: redis_servers.RedisClusterNodes) -> str:
    """The shared cluster's ``redis+cluster://`` URL, with every master flushed before the test."""
    redis_cluster.flushall()
    return redis_cluster.url


@pytest.fixture
def killable_redis_cluster() -> Iterator[redis_servers.RedisClusterNodes]:
    """A private six-node cluster for this test alone: kill masters, restart nodes, as needed."""
    with redis_servers.RedisClusterNodes() as cluster:
        yield cluster
