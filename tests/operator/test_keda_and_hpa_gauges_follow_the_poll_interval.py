"""Modes keda and hpa scale on the operator's queue gauges; those are refreshed every
``pollIntervalSeconds`` (not only every resync, 60 s in production), so what KEDA or the HPA read
is never older than that. Real control plane, operator process with a 60 s resync, real Redis."""

from __future__ import annotations

import asyncio
import time

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator import test_autoscaler_follows_a_real_queue as real_queue
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually

POLL = 2
SLACK = 3  # a reconcile's own time, on a busy machine


def test_the_queue_gauges_follow_a_backlog_within_the_poll_interval(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operator = operators(env={"CHANNELWORKS_OPERATOR_RESYNC_SECONDS": "60"})
    scaling = {"mode": "hpa", "minReplicas": 1, "maxReplicas": 4, "pollIntervalSeconds": POLL}
    apps.apply(
        kube, apps.manifest(namespace, **apps.external(redis_url, worker={"autoscaling": scaling}))
    )
    apps.wait_condition(kube, namespace, "Ready", "True")
    prefix = f"{namespace}.chat"
    depth = {"app": prefix, "channel": "websocket.receive"}
    started = time.monotonic()
    asyncio.run(real_queue.fill(redis_url, prefix))
    eventually(
        lambda: operator.metric("channelworks_layer_queue_depth", depth) == real_queue.MESSAGES,
        timeout=apps.WAIT,
        interval=0.1,
    )
    taken = time.monotonic() - started
    assert taken <= POLL + SLACK, f"the gauge showed the backlog after {taken:.1f}s"
    age = operator.metric("channelworks_layer_oldest_message_age_seconds", depth)
    assert age is not None and age > 0
