"""The CRD is the contract: its defaults, names and columns are what the operator assumes."""

from __future__ import annotations

from typing import Any

import pytest

from channelworks_operator import spec
from channelworks_operator.exceptions import InvalidSpec
from tests.operator import crd, samples


def test_names_short_name_and_subresources() -> None:
    document = crd.load()
    names = document["spec"]["names"]
    assert document["metadata"]["name"] == "realtimeapps.channelworks.dev"
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        spec.KIND,
        spec.PLURAL,
        ["rtapp"],
    )
    (version,) = document["spec"]["versions"]
    assert version["name"] == spec.VERSION
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.worker.replicas"


def test_printer_columns_are_ready_interface_workers_queue_age() -> None:
    (version,) = crd.load()["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    shown = [c["name"].upper() for c in columns if not c.get("priority")]
    assert shown == ["READY", "INTERFACE", "WORKERS", "QUEUE", "AGE"]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"channelLayer": {"redis": {"mode": "standalone"}}},
        {"channelLayer": {"redis": {"mode": "external", "url": "redis://r:6379"}}},
        {"worker": {"autoscaling": {"mode": "hpa"}}, "monitoring": {"kind": "ServiceMonitor"}},
        {"channelLayer": {"redis": {"storage": {"size": "2Gi"}}}},
    ],
)
def test_the_parser_applies_the_crd_defaults(fields: dict[str, Any]) -> None:
    """Parsing a manifest gives the same app whether or not the API server defaulted it."""
    body = samples.app_body(spec_fields=fields)
    defaulted = crd.apply_defaults(body, crd.schema())
    assert spec.parse(defaulted) == spec.parse(body)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"worker": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}},
            "spec.worker.autoscaling.minReplicas",
        ),
        ({"channelLayer": {"redis": {"mode": "external"}}}, "spec.channelLayer.redis.url"),
        (
            {"channelLayer": {"redis": {"mode": "standalone", "shards": 3}}},
            "spec.channelLayer.redis.shards",
        ),
        (
            {"worker": {"autoscaling": {"mode": "keda"}}},
            "spec.worker.autoscaling.prometheus.serverAddress",
        ),
        (
            {"django": {"env": [{"name": "CHANNELWORKS_REDIS_URL", "value": "x"}]}},
            "spec.django.env[0].name",
        ),
        ({"interface": {"replicas": "two"}}, "spec.interface.replicas"),
        ({"interface": {"port": 9100}}, "spec.interface.port"),
        (
            {"channelLayer": {"redis": {"mode": "external", "url": "redis://u:pw@redis:6379"}}},
            "spec.channelLayer.redis.url",
        ),
    ],
)
def test_the_parser_names_the_field_it_cannot_honour(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        spec.parse(samples.app_body(spec_fields=fields))
    assert raised.value.field == field


def test_the_app_prefix_is_namespace_dot_name() -> None:
    app = spec.parse(samples.app_body("chat", "demo"))
    assert app.ref.prefix == "demo.chat"


def test_redis_node_count_per_mode() -> None:
    def nodes(redis: dict[str, Any]) -> int:
        body = samples.app_body(spec_fields={"channelLayer": {"redis": redis}})
        return spec.parse(body).channel_layer.redis.nodes

    assert nodes({}) == 6
    assert nodes({"shards": 5, "replicasPerShard": 0}) == 5
    assert nodes({"mode": "standalone"}) == 1
    assert nodes({"mode": "external", "url": "redis://x:1"}) == 0
