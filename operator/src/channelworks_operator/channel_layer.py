"""The app's channel layer as reconcile sees it: where it is, whether it is ready, how many work
shards it should have (``target``: each read of its queue statistics brings the layer to
``spec.channelLayer.shards`` online), and (mode cluster) getting the Redis Cluster formed through
``channelworks_operator.rediscluster``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channelworks_operator import conditions, rediscluster, spec
from channelworks_operator.builders import meta
from channelworks_operator.conditions import Condition
from channelworks_operator.queue_metrics import LayerTarget
from channelworks_operator.status import Workload

logger = logging.getLogger(__name__)

FORM_TIMEOUT_SECONDS = 30.0
MAX_ACTIONS_IN_EVENT = 5


def target(app: spec.App, password: str | None) -> LayerTarget:
    """How the operator reaches the layer to read queue statistics (as the app's pods do)."""
    redis = app.channel_layer.redis
    url = (redis.url or "") if redis.mode == "external" else meta.redis_url(app.ref)
    return LayerTarget(
        url,
        cluster=redis.mode == "cluster",
        prefix=app.ref.prefix,
        password=password,
        # What the pods were started with (CHANNELWORKS_LAYER_SHARDS), which holds until the
        # layer records a count; the count the operator brings the layer to, online.
        shards=app.channel_layer.work_shards,
        wanted_shards=app.channel_layer.shards,
    )


def display_url(app: spec.App) -> str:
    """The layer's URL without credentials, for the status."""
    redis = app.channel_layer.redis
    url = redis.url if redis.mode == "external" else meta.redis_url(app.ref)
    scheme, sep, rest = (url or "").partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def pod_addresses(
    pods: Sequence[Mapping[str, Any]], app: spec.AppRef, count: int
) -> list[str | None]:
    """``ip:6379`` of each Redis pod in ordinal order, None for a missing or unready one."""
    by_name = {pod.get("metadata", {}).get("name"): pod for pod in pods}
    addresses: list[str | None] = []
    for ordinal in range(count):
        pod = by_name.get(f"{meta.redis_name(app)}-{ordinal}")
        addresses.append(_address(pod) if pod is not None else None)
    return addresses


def _address(pod: Mapping[str, Any]) -> str | None:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return None
    state = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in state.get("conditions") or []
    )
    ip = state.get("podIP")
    if not ready or not ip:
        return None
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{meta.REDIS_PORT}"


@dataclass(frozen=True)
class ClusterOutcome:
    converged: bool
    ready_nodes: int
    summary: str
    waiting: tuple[str, ...]
    actions: tuple[str, ...]


async def form(
    addresses: Sequence[str | None],
    app: spec.App,
    password: str | None,
    *,
    log: logging.Logger | logging.LoggerAdapter[Any],
) -> ClusterOutcome:
    """Form, heal or reshape the cluster (idempotent; bounded in time, resumes next run)."""
    redis = app.channel_layer.redis
    shape = rediscluster.Shape(shards=redis.shards, replicas_per_shard=redis.replicas_per_shard)
    try:
        result = await rediscluster.ensure(
            list(addresses), shape, password=password, timeout=FORM_TIMEOUT_SECONDS, log=log
        )
    except rediscluster.RedisClusterError as error:
        return ClusterOutcome(False, 0, "", (f"failed to form the Redis cluster: {error}",), ())
    return ClusterOutcome(
        converged=result.converged,
        ready_nodes=result.status.ready_nodes,
        summary=rediscluster.describe(result.status),
        waiting=tuple(result.waiting),
        actions=tuple(action.describe() for action in result.actions),
    )


def actions_message(actions: Sequence[str]) -> str:
    shown = "; ".join(actions[:MAX_ACTIONS_IN_EVENT])
    more = len(actions) - MAX_ACTIONS_IN_EVENT
    return shown + (f"; and {more} more steps" if more > 0 else "")


def condition(
    app: spec.App,
    redis_set: Workload | None,
    cluster: ClusterOutcome | None,
    stats_error: str | None,
) -> Condition:
    """ChannelLayerReady: the layer's pods (if ours), the cluster (if any), and a real read."""
    kind = conditions.CHANNEL_LAYER_READY
    redis = app.channel_layer.redis
    if redis.managed:
        if redis_set is None:
            return conditions.false(kind, "NotCreated", "the Redis StatefulSet does not exist yet")
        if redis_set.ready < redis.nodes:
            return conditions.false(
                kind, "NodesNotReady", f"{redis_set.ready}/{redis.nodes} Redis pods ready"
            )
        if redis.mode == "cluster":
            if cluster is None:
                return conditions.unknown(kind, "ClusterNotChecked", "the cluster was not checked")
            if not cluster.converged:
                message = "; ".join(cluster.waiting) or "the Redis cluster is forming"
                return conditions.false(kind, "ClusterForming", message)
    if stats_error is not None:
        return conditions.false(kind, "Unreachable", stats_error)
    if redis.mode == "cluster" and cluster is not None:
        return conditions.true(kind, "ClusterReady", cluster.summary)
    where = display_url(app)
    return conditions.true(kind, "Reachable", f"the channel layer at {where} answers")
