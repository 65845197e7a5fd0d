"""``spec.workerPools`` on the real API server and a real Redis layer: one Deployment per pool
taking its own channels, each autoscaled on the depth of its own channels; adding pools removes
the single ``<app>-worker`` and removing them brings it back."""

from __future__ import annotations

import asyncio
from typing import Any

from channelworks.layers import RedisChannelLayer
from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually

TARGET = 10  # waiting messages per worker
SCALING = {
    "minReplicas": 1,
    "maxReplicas": 6,
    "targetQueueDepth": TARGET,
    "targetOldestAgeSeconds": 3600,
    "pollIntervalSeconds": 2,
    "scaleDownStabilizationSeconds": 600,
}
POOLS = [
    {"name": "http", "channels": ["http.request"], "concurrency": 32},
    {"name": "sockets", "autoscaling": {"maxReplicas": 3}},
]


def deployment(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = kube.get("apps/v1", "Deployment", namespace, name)
    return found


def replicas(kube: Kube, namespace: str, name: str) -> int | None:
    found = deployment(kube, namespace, name)
    return None if found is None else int(found["spec"]["replicas"])


def env_of(found: dict[str, Any]) -> dict[str, str]:
    (container,) = found["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", "") for item in container["env"]}


async def fill(url: str, prefix: str, channel: str, count: int) -> None:
    layer = RedisChannelLayer(hosts=[url], prefix=prefix, capacity=1000)
    try:
        for number in range(count):
            await layer.send(channel, {"reply_channel": f"specific.x!{number}", "n": number})
    finally:
        await layer.close()


def test_each_pool_is_a_deployment_scaled_on_its_own_queue(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    fields = apps.external(redis_url, worker={"autoscaling": SCALING})
    apps.apply(kube, apps.manifest(namespace, **fields))
    apps.wait_condition(kube, namespace, "Ready", "True")
    assert deployment(kube, namespace, "chat-worker") is not None

    apps.apply(kube, apps.manifest(namespace, **fields, workerPools=POOLS))
    eventually(lambda: deployment(kube, namespace, "chat-worker") is None, timeout=30)
    http = deployment(kube, namespace, "chat-worker-http")
    sockets = deployment(kube, namespace, "chat-worker-sockets")
    assert http is not None and sockets is not None
    assert env_of(http)["CHANNELWORKS_WORKER_CHANNELS"] == "http.request"
    assert env_of(http)["CHANNELWORKS_WORKER_CONCURRENCY"] == "32"
    assert "CHANNELWORKS_WORKER_CHANNELS" not in env_of(sockets)
    assert env_of(sockets)["CHANNELWORKS_WORKER_EXCLUDE_CHANNELS"] == "http.request"
    assert http["spec"]["selector"]["matchLabels"]["channelworks.dev/pool"] == "http"
    assert sockets["spec"]["template"]["metadata"]["labels"]["channelworks.dev/pool"] == "sockets"
    # The status follows in the run that removed chat-worker, a moment after it went.
    eventually(lambda: apps.get(kube, namespace)["status"]["worker"]["ready"] == "2/2", timeout=30)
    apps.wait_condition(kube, namespace, "Ready", "True")

    prefix = f"{namespace}.chat"
    asyncio.run(fill(redis_url, prefix, "websocket.receive", 45))  # 5 wanted, sockets max 3
    eventually(lambda: replicas(kube, namespace, "chat-worker-sockets") == 3, timeout=30)
    assert replicas(kube, namespace, "chat-worker-http") == 1  # its queue is empty
    asyncio.run(fill(redis_url, prefix, "http.request", 25))
    eventually(lambda: replicas(kube, namespace, "chat-worker-http") == 3, timeout=30)
    assert replicas(kube, namespace, "chat-worker-sockets") == 3
    app = apps.wait_condition(kube, namespace, "Autoscaling", "True")
    message = app["status"]["conditions"]
    autoscaling = next(c for c in message if c["type"] == "Autoscaling")["message"]
    assert "pool http:" in autoscaling and "pool sockets:" in autoscaling

    def pools_in_status() -> dict[str, Any]:
        block = apps.get(kube, namespace)["status"].get("autoscaler") or {}
        return {item["name"]: item for item in block.get("pools") or []}

    # status.autoscaler.pools: each pool's own queue and decision (the API server keeps them).
    eventually(lambda: pools_in_status().get("http", {}).get("queueDepth") == 25, timeout=30)
    shown = pools_in_status()
    assert shown["sockets"]["queueDepth"] == 45 and shown["sockets"]["desiredReplicas"] == 3
    assert "queue depth 45" in shown["sockets"]["message"]
    assert shown["http"]["desiredReplicas"] == 3 and shown["http"]["lastScaleTime"]
    eventually(
        lambda: apps.get(kube, namespace)["status"]["worker"]["ready"] == "6/6",
        timeout=apps.WAIT,
        interval=0.5,
    )

    apps.apply(kube, apps.manifest(namespace, **fields))  # no pools: one worker Deployment again
    eventually(lambda: deployment(kube, namespace, "chat-worker") is not None, timeout=30)
    eventually(lambda: deployment(kube, namespace, "chat-worker-http") is None, timeout=30)
    eventually(lambda: deployment(kube, namespace, "chat-worker-sockets") is None, timeout=30)


def test_the_autoscaler_gives_each_pool_the_depth_of_its_own_channels() -> None:
    """The decision itself (pure): a backlog on one pool's channels grows that pool only."""
    from channelworks_operator import scaling, spec
    from channelworks_operator.autoscaler import QueueSnapshot
    from tests.operator import samples

    body = samples.app_body(spec_fields={"worker": {"autoscaling": SCALING}, "workerPools": POOLS})
    app = spec.parse(body)
    snapshot = QueueSnapshot(
        70,
        4.0,
        (("http.request", 0, 0.0), ("websocket.connect", 20, 4.0), ("websocket.receive", 50, 2.0)),
    )
    live = {"spec": {"replicas": 1}}
    pools = scaling.decide_pools(
        app, {"http": live, "sockets": live}, snapshot, {}, now=0.0, histories={}
    )
    assert [(item.pool.name, item.scaling.desired) for item in pools] == [
        ("http", 1),
        ("sockets", 3),  # 70 waiting -> 7, capped at the pool's maxReplicas
    ]
    total, view = scaling.combined(pools)
    assert total.desired == 4
    assert view == {"spec": {"replicas": 2}}
    assert total.decision is not None and total.decision.reason == "ScaledUp"
    assert total.decision.message.startswith("pool sockets: queue depth 70")


def test_the_status_gives_each_pool_its_queue_and_why_it_scaled() -> None:
    """status.autoscaler.pools (pure, the wall time given): each pool's depth and oldest age,
    its own decision, and lastScaleTime only for the pool whose count changed."""
    from channelworks_operator import scaling, spec
    from channelworks_operator.autoscaler import QueueSnapshot
    from tests.operator import samples

    body = samples.app_body(spec_fields={"worker": {"autoscaling": SCALING}, "workerPools": POOLS})
    app = spec.parse(body)
    snapshot = QueueSnapshot(30, 7.5, (("http.request", 2, 0.25), ("websocket.receive", 28, 7.5)))
    live = {"spec": {"replicas": 1}}
    pools = scaling.decide_pools(
        app, {"http": live, "sockets": live}, snapshot, {}, now=0.0, histories={}
    )
    total, view = scaling.combined(pools)
    previous = {"pools": [{"name": "http", "lastScaleTime": "2026-01-01T00:00:00Z"}]}
    block = scaling.status_block(previous, total, view, now="2026-12-06T10:00:00Z")
    assert block is not None
    http, sockets = block["pools"]
    assert http == {
        "name": "http",
        "desiredReplicas": 1,
        "reason": "Stable",
        "message": "queue depth 2 at a target of 10 per worker: 1 workers",
        "lastScaleTime": "2026-01-01T00:00:00Z",  # kept: its count did not move
        "queueDepth": 2,
        "oldestMessageAgeSeconds": 0.25,
    }
    assert sockets["desiredReplicas"] == 3 and sockets["reason"] == "ScaledUp"
    assert sockets["message"] == "queue depth 28 at a target of 10 per worker: 1 -> 3 workers"
    assert (sockets["queueDepth"], sockets["oldestMessageAgeSeconds"]) == (28, 7.5)
    assert sockets["lastScaleTime"] == "2026-12-06T10:00:00Z"  # the time given, no clock read
    assert scaling.pool_figures(pools) == [
        ("http", 1, 6, 2, 0.25),
        ("sockets", 3, 3, 28, 7.5),
    ]
