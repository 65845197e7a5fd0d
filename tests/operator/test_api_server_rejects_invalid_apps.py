"""The CRD's schema and CEL rules reject malformed RealtimeApps at the real API server, with a
message a person understands (no operator needed)."""

from __future__ import annotations

from typing import Any

import pytest

from channelworks_operator.exceptions import ApiError
from channelworks_operator.kube import Kube
from tests.operator import apps

INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "min-over-max": (
        {"worker": {"autoscaling": {"minReplicas": 8, "maxReplicas": 4}}},
        "worker.autoscaling.minReplicas must not be greater than maxReplicas",
    ),
    "interface-min-over-max": (
        {"interface": {"autoscaling": {"enabled": True, "minReplicas": 6, "maxReplicas": 3}}},
        "interface.autoscaling.minReplicas must not be greater than maxReplicas",
    ),
    "interface-autoscaling-min-zero": (
        {"interface": {"autoscaling": {"enabled": True, "minReplicas": 0}}},
        "should be greater than or equal to 1",
    ),
    "external-without-url": (
        {"channelLayer": {"redis": {"mode": "external"}}},
        "channelLayer.redis.mode external needs a url",
    ),
    "too-few-shards": (
        {"channelLayer": {"redis": {"shards": 2}}},
        "spec.channelLayer.redis.shards: Invalid value: 2: spec.channelLayer.redis.shards in body "
        "should be greater than or equal to 3",
    ),
    "unknown-layer-mode": (
        {"channelLayer": {"redis": {"mode": "memcached"}}},
        'Unsupported value: "memcached": supported values: "cluster", "standalone", "external"',
    ),
    "shards-with-standalone": (
        {"channelLayer": {"redis": {"mode": "standalone", "shards": 3}}},
        "channelLayer.redis.shards and replicasPerShard apply only to mode cluster",
    ),
    "reserved-env": (
        {"django": {"env": [{"name": "CHANNELWORKS_REDIS_URL", "value": "redis://x"}]}},
        "are set by the operator",
    ),
    "interface-on-the-metrics-port": (
        {"interface": {"port": 9100}},
        "spec.interface.port must not be 9100: the pods serve metrics and probes on that port",
    ),
    "password-in-the-redis-url": (
        {"channelLayer": {"redis": {"mode": "external", "url": "redis://:s3cret@redis:6379/0"}}},
        "spec.channelLayer.redis.url must not hold a user or password",
    ),
    "keda-without-prometheus": (
        {"worker": {"autoscaling": {"mode": "keda"}}},
        "worker.autoscaling.mode keda needs prometheus.serverAddress",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_app_is_rejected_with_a_clear_message(
    case: str, kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    fields, message = INVALID[case]
    with pytest.raises(ApiError) as raised:
        apps.apply(kube, apps.manifest(namespace, **fields))
    assert raised.value.status == 422, raised.value
    assert message in raised.value.message


def test_missing_image_is_rejected(
    kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    body = apps.manifest(namespace)
    del body["spec"]["image"]
    with pytest.raises(ApiError) as raised:
        apps.apply(kube, body)
    assert "spec.image: Required value" in raised.value.message


def test_a_name_too_long_for_its_children_is_rejected(
    kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    with pytest.raises(ApiError) as raised:
        apps.apply(kube, apps.manifest(namespace, name="a" * 47))
    assert "metadata.name must be at most 46 characters" in raised.value.message


def test_the_layer_mode_cannot_change(
    kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    apps.apply(kube, apps.manifest(namespace, channelLayer={"redis": {"mode": "standalone"}}))
    changed = apps.manifest(namespace, channelLayer={"redis": {"mode": "cluster"}})
    with pytest.raises(ApiError) as raised:
        apps.apply(kube, changed)
    assert "channelLayer.redis.mode cannot be changed" in raised.value.message


def test_the_api_server_fills_in_the_defaults(
    kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    created = apps.apply(kube, apps.manifest(namespace))
    spec = created["spec"]
    interface = dict(spec["interface"])
    autoscaling = interface.pop("autoscaling")
    assert interface == {
        "replicas": 2,
        "port": 8000,
        "terminationGracePeriodSeconds": 30,
        "service": {"type": "ClusterIP"},
    }
    # Interfaces keep spec.interface.replicas unless autoscaling is asked for.
    assert autoscaling["enabled"] is False
    assert (autoscaling["minReplicas"], autoscaling["maxReplicas"]) == (2, 10)
    assert spec["worker"]["autoscaling"]["mode"] == "builtin"
    assert spec["channelLayer"]["redis"] == {"mode": "cluster"}
    assert spec["networkPolicy"] == {"enabled": True}
