"""Mode cluster, end to end on real redis-server processes (the pods' stand-ins): the operator's
glue forms the cluster through ``rediscluster``, then reads the app's queue from it, and the
ChannelLayerReady condition follows. (Pods on the test control plane run no Redis, so this part
is tested here, without Kubernetes.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from channelworks.layers import RedisChannelLayer
from channelworks_operator import channel_layer, spec, status
from channelworks_operator.queue_metrics import LayerTarget, QueueStatsReader
from tests.operator import samples
from tests.rediscluster.nodes import RawNodes

PASSWORD = "cluster-test-password"
LOG = logging.getLogger(__name__)


@pytest.fixture
def pods() -> Iterator[RawNodes]:
    nodes = RawNodes(6, password=PASSWORD)
    try:
        yield nodes
    finally:
        nodes.stop()


def redis_set(ready: int) -> status.Workload:
    return status.Workload(
        desired=6, replicas=6, ready=ready, available=ready, updated=6, rolled_out=True
    )


async def form_then_read(nodes: RawNodes, app: spec.App) -> None:
    waiting = channel_layer.condition(app, redis_set(5), None, None)
    assert (waiting.status, waiting.reason) == ("False", "NodesNotReady")

    outcome = await channel_layer.form(nodes.addresses(), app, PASSWORD, log=LOG)
    assert outcome.converged, outcome.waiting
    assert outcome.ready_nodes == 6
    assert outcome.actions  # it did the forming
    again = await channel_layer.form(nodes.addresses(), app, PASSWORD, log=LOG)
    assert again.converged and not again.actions  # idempotent

    first = nodes.addresses()[0]
    url = f"redis+cluster://{first}"
    sender = RedisChannelLayer(
        hosts=[{"address": url, "password": PASSWORD}], prefix=app.ref.prefix
    )
    for number in range(12):
        await sender.send("http.request", {"n": number})
    await sender.close()

    reader = QueueStatsReader()
    target = LayerTarget(f"redis://{first}", cluster=True, prefix=app.ref.prefix, password=PASSWORD)
    snapshot = await reader.read("demo/chat", target, timeout=10)
    await reader.close()
    assert snapshot.depth == 12

    ready = channel_layer.condition(app, redis_set(6), outcome, None)
    assert (ready.status, ready.reason) == ("True", "ClusterReady")
    assert "6 nodes ready" in ready.message


def test_the_operator_forms_the_cluster_and_reads_the_queue(pods: RawNodes) -> None:
    app = spec.parse(samples.app_body(spec_fields={"channelLayer": {"redis": {"shards": 3}}}))
    asyncio.run(form_then_read(pods, app))


def test_an_unreachable_layer_is_a_reason_not_an_error() -> None:
    app = spec.parse(samples.app_body())
    reader = QueueStatsReader()
    target = LayerTarget("redis://127.0.0.1:1", cluster=False, prefix="demo.chat")

    async def read() -> str:
        from channelworks_operator.exceptions import QueueStatsUnavailable

        with pytest.raises(QueueStatsUnavailable) as raised:
            await reader.read("demo/chat", target, timeout=1.0)
        await reader.close()
        return str(raised.value)

    message = asyncio.run(read())
    assert message.startswith("failed to read queue statistics")
    condition = channel_layer.condition(app, redis_set(6), None, message)
    assert condition.reason == "ClusterNotChecked"
    external = spec.parse(
        samples.app_body(
            spec_fields={"channelLayer": {"redis": {"mode": "external", "url": "redis://x:1"}}}
        )
    )
    condition = channel_layer.condition(external, None, None, message)
    assert (condition.status, condition.reason) == ("False", "Unreachable")
