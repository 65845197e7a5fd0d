"""A worker that starts before its Redis Cluster is formed serves once the cluster is formed.

On a pod network the worker pods often start while the Redis pods are still being made into a
cluster: every node answers, but serves no slot (``CLUSTERDOWN``), and ``CLUSTER SLOTS`` is
empty. The layer must read the slot map again until it is complete, not keep the empty one
forever (issue 16, point 1: the worker logged ``CLUSTERDOWN hash slot N is not served`` while
the cluster reported ``ok``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from channelworks.layers import RedisChannelLayer
from tests.support import redis_servers
from tests.support.eventually import eventually_async

SERVES_WITHIN_SECONDS = 10.0


@pytest.fixture
def unformed_cluster() -> Iterator[redis_servers.RedisClusterNodes]:
    """Six running redis-server nodes in cluster mode, not yet a cluster."""
    with redis_servers.RedisClusterNodes(formed=False) as nodes:
        yield nodes


async def test_a_worker_started_before_the_cluster_formed_serves_once_it_is(
    unformed_cluster: redis_servers.RedisClusterNodes,
) -> None:
    urls = unformed_cluster.urls
    worker_layer = RedisChannelLayer(hosts=urls, prefix="early", lease_seconds=3)
    client_layer = RedisChannelLayer(hosts=urls, prefix="early")
    receiver = worker_layer.work_receiver(["work"])
    try:
        # The worker starts, and keeps trying, while the nodes serve no slot.
        assert await receiver.get(timeout=2) is None
        formed_at = time.monotonic()
        await asyncio.to_thread(unformed_cluster.form)
        formed_in = time.monotonic() - formed_at

        async def send() -> None:
            await client_layer.send("work", {"text": "hello"})

        await asyncio.wait_for(send(), SERVES_WITHIN_SECONDS)
        delivery = await receiver.get(timeout=SERVES_WITHIN_SECONDS)
        served_in = time.monotonic() - formed_at - formed_in
        print(f"\ncluster formed in {formed_in:.1f}s; the worker served {served_in:.1f}s later")
        assert delivery is not None, "the worker never took the message"
        assert delivery.message == {"text": "hello"}
        await delivery.ack()
        # And it took its share of the shards: the worker group works as usual.
        await eventually_async(
            lambda: len(getattr(receiver, "owned_shards", [])) == worker_layer.config.shards,
            timeout=SERVES_WITHIN_SECONDS,
        )
    finally:
        await receiver.stop(timeout=1)
        await worker_layer.close()
        await client_layer.close()
