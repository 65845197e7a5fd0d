"""The built-in autoscaler reads a real Redis channel layer: workers follow the queue out, and
back in after the stabilization window; the decision shows in status, Events and the metric."""

from __future__ import annotations

import asyncio

from channelworks.layers import RedisChannelLayer
from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually

MESSAGES = 35
TARGET = 10  # messages per worker: 35 waiting -> 4 workers


def worker_replicas(kube: Kube, namespace: str) -> int:
    worker = kube.get("apps/v1", "Deployment", namespace, "chat-worker")
    assert worker is not None
    replicas: int = worker["spec"]["replicas"]
    return replicas


async def fill(url: str, prefix: str) -> None:
    layer = RedisChannelLayer(hosts=[url], prefix=prefix)
    try:
        for number in range(MESSAGES):
            await layer.send("websocket.receive", {"text": f"message {number}"})
    finally:
        await layer.close()


async def drain(url: str, prefix: str) -> None:
    layer = RedisChannelLayer(hosts=[url], prefix=prefix)
    try:
        await layer.flush()
    finally:
        await layer.close()


def test_workers_follow_the_queue(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operator = operators()
    scaling = {
        "minReplicas": 1,
        "maxReplicas": 6,
        "targetQueueDepth": TARGET,
        "targetOldestAgeSeconds": 3600,
        "pollIntervalSeconds": 2,
        "scaleDownStabilizationSeconds": 6,
    }
    apps.apply(
        kube,
        apps.manifest(namespace, **apps.external(redis_url, worker={"autoscaling": scaling})),
    )
    apps.wait_condition(kube, namespace, "Ready", "True")
    assert worker_replicas(kube, namespace) == 1
    prefix = f"{namespace}.chat"

    asyncio.run(fill(redis_url, prefix))
    eventually(lambda: worker_replicas(kube, namespace) == 4, timeout=30, interval=0.5)
    app = apps.wait_condition(kube, namespace, "Autoscaling", "True", reason="ScaledUp")
    assert app["status"]["queueDepth"] == MESSAGES
    assert app["status"]["autoscaler"]["desiredReplicas"] == 4
    assert "lastScaleTime" in app["status"]["autoscaler"]
    assert (
        operator.metric("channelworks_operator_autoscaler_desired_replicas", {"app": prefix}) == 4
    )
    assert operator.metric("channelworks_operator_autoscaler_max_replicas", {"app": prefix}) == 6
    queue = {"app": prefix, "channel": "websocket.receive"}
    assert operator.metric("channelworks_layer_queue_depth", queue) == MESSAGES
    eventually(lambda: apps.events(kube, namespace, "ScaledUp"), timeout=10)
    # The new workers really start (kwok makes them Ready) and the status counts them.
    eventually(
        lambda: apps.get(kube, namespace)["status"]["worker"]["ready"] == "4/4",
        timeout=apps.WAIT,
        interval=0.5,
    )

    asyncio.run(drain(redis_url, prefix))
    # Not at once: the stabilization window keeps the workers for a while.
    stable = apps.wait_condition(kube, namespace, "Autoscaling", "True", reason="Stabilizing")
    assert worker_replicas(kube, namespace) == 4
    assert stable["status"]["queueDepth"] == 0
    eventually(lambda: worker_replicas(kube, namespace) == 1, timeout=30, interval=0.5)
    apps.wait_condition(kube, namespace, "Autoscaling", "True", reason="ScaledDown")
    eventually(lambda: apps.events(kube, namespace, "ScaledDown"), timeout=10)
