"""A worker beyond one per work shard would hold no shard and idle: the built-in autoscaler never
asks for more, and the Autoscaling condition says why a larger maxReplicas is not used."""

from __future__ import annotations

from typing import Any

import pytest

from channelworks.layers import config as layer_config
from channelworks_operator import scaling, spec
from channelworks_operator.autoscaler import QueueSnapshot
from channelworks_operator.exceptions import ApiError
from channelworks_operator.kube import Kube
from tests.operator import apps, samples


def _decide(max_replicas: int, mode: str = "builtin") -> scaling.Scaling:
    autoscaling = {"maxReplicas": max_replicas, "targetQueueDepth": 10, "mode": mode}
    if mode == "keda":
        autoscaling["prometheus"] = {"serverAddress": "http://prometheus:9090"}
    app = spec.parse(samples.app_body(spec_fields={"worker": {"autoscaling": autoscaling}}))
    served = {scaling.KEDA: True}
    snapshot = QueueSnapshot(10_000, 1.0, (("websocket.receive", 10_000, 1.0),))
    live = {"spec": {"replicas": 4}}
    return scaling.decide(app, live, snapshot, served, now=0.0, history=())


def test_the_operator_knows_the_layers_shard_count() -> None:
    assert spec.DEFAULT_WORK_SHARDS == layer_config.DEFAULT_SHARDS


def test_a_backlog_asks_for_at_most_one_worker_per_shard() -> None:
    decided = _decide(max_replicas=100)
    assert decided.desired == scaling.WORKER_CEILING == 16
    message = decided.condition.message
    assert "maxReplicas 100 is over 16: the layer has 16 work shards" in message
    assert "capped at 16" in message


def test_a_max_within_the_shards_is_used_as_it_is() -> None:
    decided = _decide(max_replicas=12)
    assert decided.desired == 12
    assert "work shards" not in decided.condition.message


def test_with_keda_the_condition_says_workers_beyond_the_shards_idle() -> None:
    decided = _decide(max_replicas=30, mode="keda")
    assert "a worker beyond one per shard would idle" in decided.condition.message


def test_work_shards_raise_the_ceiling_and_reach_every_pod() -> None:
    from channelworks_operator import builders

    fields = {
        "worker": {"autoscaling": {"maxReplicas": 100, "targetQueueDepth": 10}},
        "channelLayer": {"workShards": 64},
    }
    app = spec.parse(samples.app_body(spec_fields=fields))
    snapshot = QueueSnapshot(10_000, 1.0, (("websocket.receive", 10_000, 1.0),))
    decided = scaling.decide(app, {"spec": {"replicas": 4}}, snapshot, {}, now=0.0, history=())
    assert decided.desired == 64
    assert "the layer has 64 work shards" in decided.condition.message
    deployments = [
        item for item in builders.desired(app, samples.context()) if item["kind"] == "Deployment"
    ]
    assert {item["metadata"]["name"] for item in deployments} == {"chat-interface", "chat-worker"}
    for item in deployments:
        (container,) = item["spec"]["template"]["spec"]["containers"]
        assert {"name": "CHANNELWORKS_LAYER_SHARDS", "value": "64"} in container["env"]


def test_the_work_shards_cannot_change_once_the_app_exists(
    kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    apps.apply(kube, apps.manifest(namespace, channelLayer={"workShards": 64}))
    with pytest.raises(ApiError) as raised:
        apps.apply(kube, apps.manifest(namespace, channelLayer={"workShards": 16}))
    assert "channelLayer.workShards cannot be changed once the app exists" in raised.value.message
    apps.apply(kube, apps.manifest(namespace, name="plain"))
    with pytest.raises(ApiError):  # unset is 16: setting it later is a change too
        apps.apply(kube, apps.manifest(namespace, name="plain", channelLayer={"workShards": 32}))
    apps.apply(kube, apps.manifest(namespace, name="plain", channelLayer={"workShards": 16}))
