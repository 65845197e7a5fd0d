"""A worker beyond one per work shard would hold no shard and idle: the built-in autoscaler never
asks for more, and the Autoscaling condition says why a larger maxReplicas is not used. Left out,
the shard count follows maxReplicas, so only a workShards set below it caps; workShards can be
changed on a live app (the layer changes online, tests/layer)."""

from __future__ import annotations

from typing import Any

import pytest

from channelworks.layers import config as layer_config
from channelworks_operator import scaling, spec
from channelworks_operator.autoscaler import QueueSnapshot
from channelworks_operator.exceptions import ApiError
from channelworks_operator.kube import Kube
from tests.operator import apps, samples


def _decide(
    max_replicas: int, mode: str = "builtin", work_shards: int | None = 16
) -> scaling.Scaling:
    autoscaling = {"maxReplicas": max_replicas, "targetQueueDepth": 10, "mode": mode}
    if mode == "keda":
        autoscaling["prometheus"] = {"serverAddress": "http://prometheus:9090"}
    fields: dict[str, Any] = {"worker": {"autoscaling": autoscaling}}
    if work_shards is not None:
        fields["channelLayer"] = {"workShards": work_shards}
    app = spec.parse(samples.app_body(spec_fields=fields))
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
    assert (
        "spec.worker.autoscaling.maxReplicas 100 cannot be used: spec.channelLayer.workShards "
        "is 16 and each shard is read by one worker of a pool at a time" in message
    )
    assert "allowed: up to 16, or raise spec.channelLayer.workShards to 100 or more" in message
    assert "(it changes online)" in message
    assert "capped at 16" in message


def test_a_pools_max_over_the_shards_names_the_pool_and_what_is_allowed() -> None:
    pools = [
        {"name": "http", "channels": ["http.request"], "autoscaling": {"maxReplicas": 40}},
        {"name": "ws", "autoscaling": {"maxReplicas": 8}},
    ]
    fields = {"workerPools": pools, "channelLayer": {"workShards": 32}}
    app = spec.parse(samples.app_body(spec_fields=fields))
    snapshot = QueueSnapshot(10_000, 1.0, (("http.request", 10_000, 1.0),))
    http, ws = scaling.decide_pools(app, {}, snapshot, {}, now=0.0, histories={})
    assert http.scaling.desired == 32
    message = http.scaling.condition.message
    assert "spec.workerPools[0].autoscaling.maxReplicas (pool http) 40 cannot be used" in message
    assert "allowed: up to 32" in message and "capped at 32" in message
    assert "cannot be used" not in ws.scaling.condition.message


def test_fixed_replicas_over_the_shards_say_how_many_idle() -> None:
    fields = {
        "worker": {"replicas": 20, "autoscaling": {"enabled": False}},
        "channelLayer": {"workShards": 16},
    }
    app = spec.parse(samples.app_body(spec_fields=fields))
    decided = scaling.decide(app, None, None, {}, now=0.0, history=())
    assert decided.desired == 20  # what the spec asks for: the operator does not change it
    message = decided.condition.message
    assert "spec.worker.replicas 20 cannot be used" in message
    assert "allowed: up to 16" in message and "4 of them idle" in message


def test_left_out_the_shards_follow_max_replicas() -> None:
    decided = _decide(max_replicas=100, work_shards=None)
    assert decided.desired == 100
    assert "work shards" not in decided.condition.message


@pytest.mark.parametrize(
    ("max_replicas", "shards"), [(1, 16), (16, 16), (17, 32), (100, 128), (1000, 1024)]
)
def test_the_derived_count_is_a_power_of_two_from_16_to_1024(
    max_replicas: int, shards: int
) -> None:
    autoscaling = {"maxReplicas": max_replicas, "targetQueueDepth": 10}
    app = spec.parse(samples.app_body(spec_fields={"worker": {"autoscaling": autoscaling}}))
    assert app.channel_layer.shards == shards
    assert app.channel_layer.work_shards is None  # no variable: the pods start at 16


def test_without_autoscaling_the_replicas_count_and_pools_take_the_largest() -> None:
    fixed = {"replicas": 40, "autoscaling": {"enabled": False}}
    body = samples.app_body(spec_fields={"worker": fixed})
    assert spec.parse(body).channel_layer.shards == 64
    pools = [
        {"name": "http", "channels": ["http.request"], "replicas": 3},
        {"name": "ws", "autoscaling": {"maxReplicas": 200, "targetQueueDepth": 10}},
    ]
    body = samples.app_body(spec_fields={"workerPools": pools})
    assert spec.parse(body).channel_layer.shards == 256


def test_a_max_within_the_shards_is_used_as_it_is() -> None:
    decided = _decide(max_replicas=12)
    assert decided.desired == 12
    assert "work shards" not in decided.condition.message


def test_with_keda_the_condition_says_workers_beyond_the_shards_idle() -> None:
    decided = _decide(max_replicas=30, mode="keda")
    message = decided.condition.message
    assert "spec.worker.autoscaling.maxReplicas 30 cannot be used" in message
    assert "it scales that far regardless" in message


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
    assert "spec.channelLayer.workShards is 64" in decided.condition.message
    deployments = [
        item for item in builders.desired(app, samples.context()) if item["kind"] == "Deployment"
    ]
    assert {item["metadata"]["name"] for item in deployments} == {"chat-interface", "chat-worker"}
    for item in deployments:
        (container,) = item["spec"]["template"]["spec"]["containers"]
        assert {"name": "CHANNELWORKS_LAYER_SHARDS", "value": "64"} in container["env"]


def test_the_work_shards_can_change_on_a_live_app(
    kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    apps.apply(kube, apps.manifest(namespace, channelLayer={"workShards": 64}))
    apps.apply(kube, apps.manifest(namespace, channelLayer={"workShards": 16}))
    apps.apply(kube, apps.manifest(namespace, name="plain"))
    apps.apply(kube, apps.manifest(namespace, name="plain", channelLayer={"workShards": 32}))
    with pytest.raises(ApiError) as raised:  # the bounds still hold
        apps.apply(kube, apps.manifest(namespace, name="plain", channelLayer={"workShards": 2000}))
    assert "workShards" in raised.value.message
