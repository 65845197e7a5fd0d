"""Layer fixtures: the same tests run on every backend a user can pick."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from channelworks.layers import (
    ChannelworksLayer,
    InMemoryChannelLayer,
    LocalChannelLayer,
    RedisChannelLayer,
)
from tests.support import netns, redis_servers, redis_waits

LayerFactory = Callable[..., ChannelworksLayer]


@pytest.fixture
def short_redis_waits(monkeypatch: pytest.MonkeyPatch) -> float:
    """The Redis layer's waits shortened for this test (tests/support/redis_waits.py): a read
    is issued again every 0.2 s, an exchange may take 1 s, ``receive()`` asks again every
    second. Returns the longest: idling a few times that crosses each wait as a minute of
    production idle does."""
    return redis_waits.shorten(monkeypatch.setattr)


@pytest.fixture(params=["memory", "local", "redis", "cluster"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_layer(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> AsyncIterator[LayerFactory]:
    """Build layers of the test's backend sharing one fresh prefix; closes them afterwards."""
    prefix = f"test{secrets.token_hex(4)}"
    made: list[ChannelworksLayer] = []
    hosts: list[str] = []
    if backend == "redis":
        hosts = [request.getfixturevalue("redis_url")]
    elif backend == "cluster":
        hosts = [request.getfixturevalue("cluster_url")]

    def factory(**config: Any) -> ChannelworksLayer:
        """A new layer "process" (a client of the same Redis or local broker); with memory,
        every call returns the test's one layer."""
        config.setdefault("prefix", prefix)
        if backend == "memory":
            if not made:
                made.append(InMemoryChannelLayer(**config))
            return made[0]
        if backend == "local":
            local = LocalChannelLayer(
                path=str(tmp_path / "layer.sock"), broker_idle_timeout=3, **config
            )
            made.append(local)
            return local
        layer = RedisChannelLayer(hosts=hosts, **config)
        made.append(layer)
        return layer

    yield factory
    for layer in made:
        await layer.close()


@pytest.fixture
async def layer(make_layer: LayerFactory) -> ChannelworksLayer:
    return make_layer()


def _own_namespace() -> Iterator[netns.Namespace]:
    problem = netns.Namespace.unavailable()
    if problem is not None:
        pytest.skip(problem)
    with netns.Namespace() as made:
        yield made


@pytest.fixture
def namespace() -> Iterator[netns.Namespace]:
    """A network namespace of the test's own, whose ports can be blackholed (needs root)."""
    yield from _own_namespace()


@pytest.fixture
def another_namespace() -> Iterator[netns.Namespace]:
    """A second one, for a server at a second address."""
    yield from _own_namespace()


@pytest.fixture
def namespaced_server(namespace: netns.Namespace) -> Iterator[redis_servers.RedisServer]:
    """A standalone redis-server listening on a namespace's address."""
    with redis_servers.RedisServer(host=namespace.address, launcher=namespace.launcher) as server:
        yield server


@pytest.fixture
def namespaced_cluster(namespace: netns.Namespace) -> Iterator[redis_servers.RedisClusterNodes]:
    """A private six-node cluster listening on a namespace's address: a node's port can be made
    to go silent (``namespace.blackhole(port)``), as a vanished pod's address does."""
    with redis_servers.RedisClusterNodes(
        host=namespace.address, launcher=namespace.launcher
    ) as cluster:
        yield cluster
