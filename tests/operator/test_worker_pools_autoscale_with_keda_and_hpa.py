"""Worker pools in autoscaling modes keda and hpa: one ScaledObject or HPA per pool Deployment,
each on its own pool's queue (the operator's ``channelworks_operator_pool_*{app,pool}`` gauges),
the pool's count handed over to it, its part in ``status.autoscaler.pools``; switching a pool
back to builtin or removing it removes its ScaledObject/HPA. The builders and the reconcile run
in process (``fake_kube``); the real API server proves the objects are valid and that the real
HPA controller takes a pool's HPA up."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from channelworks_operator import builders, spec
from channelworks_operator.kube import Kube
from tests.operator import apps, optional_apis, samples
from tests.operator.conftest import OperatorFactory
from tests.operator.test_autoscaling_modes_use_keda_and_hpa_when_present import (
    hpa_states,
    operator_owns_replicas,
)
from tests.operator.test_reconcile_logic_runs_in_process import Harness
from tests.support.eventually import eventually

KEDA = "keda.sh/v1alpha1"
HPA = "autoscaling/v2"
PROMETHEUS = "http://prometheus.monitoring.svc:9090"
DEPTH = "channelworks_operator_pool_queue_depth"
AGE = "channelworks_operator_pool_oldest_message_age_seconds"


def pools(http: dict[str, Any], sockets: dict[str, Any]) -> dict[str, Any]:
    """Two pools: ``http`` takes http.request, ``sockets`` every other channel."""
    return {
        "workerPools": [
            {"name": "http", "channels": ["http.request"], "autoscaling": http},
            {"name": "sockets", "autoscaling": sockets},
        ]
    }


KEDA_HTTP = {"mode": "keda", "minReplicas": 2, "maxReplicas": 8, "targetQueueDepth": 20}
HPA_SOCKETS = {"mode": "hpa", "minReplicas": 1, "maxReplicas": 5, "targetOldestAgeSeconds": 3}
WITH_PROMETHEUS = {"worker": {"autoscaling": {"prometheus": {"serverAddress": PROMETHEUS}}}}


def build(fields: dict[str, Any], **ctx: Any) -> dict[str, dict[str, Any]]:
    app = spec.parse(samples.app_body(spec_fields=fields))
    return samples.by_kind(builders.desired(app, samples.context(**ctx)))


def test_each_pool_gets_a_scaled_object_or_hpa_on_its_own_queue() -> None:
    children = build({**WITH_PROMETHEUS, **pools(KEDA_HTTP, HPA_SOCKETS)})
    assert "ScaledObject/chat-worker" not in children
    assert "HorizontalPodAutoscaler/chat-worker" not in children

    scaled = children["ScaledObject/chat-worker-http"]
    assert scaled["metadata"]["labels"]["channelworks.dev/pool"] == "http"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "chat-worker-http"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 8)
    depth, age = scaled["spec"]["triggers"]
    assert depth["metadata"]["serverAddress"] == PROMETHEUS
    assert depth["metadata"]["query"] == f'sum({DEPTH}{{app="demo.chat",pool="http"}})'
    assert (depth["metricType"], depth["metadata"]["threshold"]) == ("AverageValue", "20")
    assert age["metadata"]["query"] == f'max({AGE}{{app="demo.chat",pool="http"}})'
    assert age["metricType"] == "Value"

    hpa = children["HorizontalPodAutoscaler/chat-worker-sockets"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "chat-worker-sockets"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 5)
    selector = {"matchLabels": {"app": "demo.chat", "pool": "sockets"}}
    depth, age = hpa["spec"]["metrics"]
    assert depth["external"]["metric"] == {"name": DEPTH, "selector": selector}
    assert age["external"]["metric"] == {"name": AGE, "selector": selector}
    assert age["external"]["target"] == {"type": "Value", "value": "3"}
    kubernetes_validate.validate(hpa, "1.33", strict=True)

    # The pools' Deployments leave their count to them.
    assert "replicas" not in children["Deployment/chat-worker-http"]["spec"]
    assert "replicas" not in children["Deployment/chat-worker-sockets"]["spec"]


def test_a_pool_takes_the_prometheus_server_of_spec_worker_but_not_its_whole_app_query() -> None:
    fields = {
        "worker": {
            "autoscaling": {
                "mode": "keda",
                "metricName": "app_depth",
                "prometheus": {"serverAddress": PROMETHEUS, "query": "sum(app_depth)"},
            }
        },
        **pools({}, {"prometheus": {"query": "sum(my_sockets)"}}),
    }
    http, sockets = spec.parse(samples.app_body(spec_fields=fields)).pools
    assert http.worker.autoscaling.mode == "keda"
    assert http.worker.autoscaling.prometheus_address == PROMETHEUS
    assert http.worker.autoscaling.prometheus_query is None  # its own queue, not the app's
    assert http.worker.autoscaling.metric_name == DEPTH
    assert sockets.worker.autoscaling.prometheus_address == PROMETHEUS
    assert sockets.worker.autoscaling.prometheus_query == "sum(my_sockets)"
    children = build(fields)
    (depth, _) = children["ScaledObject/chat-worker-sockets"]["spec"]["triggers"]
    assert depth["metadata"]["query"] == "sum(my_sockets)"


def test_without_keda_a_keda_pool_keeps_its_minimum_and_the_condition_says_why() -> None:
    h = Harness(**WITH_PROMETHEUS, **pools(KEDA_HTTP, {}))
    h.stats.channels = (("http.request", 10, 1.0),)
    h.stats.depth = 10
    h.run(full=True)
    assert not h.kube.has("ScaledObject", "chat-worker-http")
    assert h.replicas("chat-worker-http") == 2
    condition = h.condition("Autoscaling")
    assert (condition["status"], condition["reason"]) == ("False", "KedaNotInstalled")
    assert (
        "pool http: KEDA's ScaledObject API (keda.sh/v1alpha1) is not installed"
        in (condition["message"])
    )


def test_pools_in_keda_and_hpa_mode_are_handed_to_their_own_autoscalers_in_process() -> None:
    h = Harness(**WITH_PROMETHEUS, **pools(KEDA_HTTP, HPA_SOCKETS))
    h.kube.served[KEDA] = {"ScaledObject"}
    h.kube.served["external.metrics.k8s.io/v1beta1"] = {"*"}
    h.stats.channels = (("http.request", 30, 2.0), ("websocket.receive", 7, 4.5))
    h.stats.depth = 37
    h.run(full=True)
    assert h.kube.has("ScaledObject", "chat-worker-http")
    assert h.kube.has("HorizontalPodAutoscaler", "chat-worker-sockets")
    assert not h.kube.has("Deployment", "chat-worker")

    # What KEDA and the HPA read: each pool's own part of the queue, by app and pool.
    app = {"app": "demo.chat"}
    assert h.metric(DEPTH, {**app, "pool": "http"}) == 30
    assert h.metric(DEPTH, {**app, "pool": "sockets"}) == 7
    assert h.metric(AGE, {**app, "pool": "sockets"}) == 4.5
    assert h.metric("channelworks_operator_autoscaler_pool_desired_replicas", app) is None

    # The status: who scales each pool, on which queue.
    block = h.status()["autoscaler"]
    by_pool = {item["name"]: item for item in block["pools"]}
    assert by_pool["http"]["reason"] == "ScaledObject"
    assert "chat-worker-http scales workers from 2 to 8" in by_pool["http"]["message"]
    assert "pool http" in by_pool["http"]["message"]
    assert by_pool["sockets"]["reason"] == "HorizontalPodAutoscaler"
    assert (by_pool["sockets"]["queueDepth"], by_pool["sockets"]["oldestMessageAgeSeconds"]) == (
        7,
        4.5,
    )
    assert "desiredReplicas" not in by_pool["http"]
    assert h.condition("Autoscaling")["status"] == "True"

    # Their autoscalers own the counts: what they set stays.
    h.kube.find("Deployment", "chat-worker-http")["spec"]["replicas"] = 6
    h.clock.now += 15
    h.run(full=True)
    assert h.replicas("chat-worker-http") == 6

    # The http pool back to builtin: its ScaledObject goes, the operator sets its count again.
    h.change(**pools({"mode": "builtin", "maxReplicas": 8, "targetQueueDepth": 20}, HPA_SOCKETS))
    h.clock.now += 15
    h.run()
    assert not h.kube.has("ScaledObject", "chat-worker-http")
    assert h.kube.has("HorizontalPodAutoscaler", "chat-worker-sockets")
    assert h.replicas("chat-worker-http") == 6  # out at once only; in after the window
    desired = "channelworks_operator_autoscaler_pool_desired_replicas"
    assert h.metric(desired, {**app, "pool": "http"}) == 6

    # No pools: their HPA and Deployments go, <app>-worker comes back.
    h.app["spec"].pop("workerPools")
    h.app["metadata"]["generation"] += 1
    h.clock.now += 15
    h.run()
    assert not h.kube.has("HorizontalPodAutoscaler", "chat-worker-sockets")
    assert not h.kube.has("Deployment", "chat-worker-sockets")
    assert h.kube.has("Deployment", "chat-worker")


def test_the_api_server_and_its_hpa_controller_take_each_pools_autoscaler(
    kube: Kube,
    crds: optional_apis.Crds,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
) -> None:
    crds.install(optional_apis.KEDA)
    operators()
    fields = {**WITH_PROMETHEUS, **pools(KEDA_HTTP, HPA_SOCKETS)}
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **fields)))

    scaled = apps.wait_for(kube, KEDA, "ScaledObject", namespace, "chat-worker-http")
    hpa = apps.wait_for(kube, HPA, "HorizontalPodAutoscaler", namespace, "chat-worker-sockets")
    apps.owned_by_the_app(scaled, apps.get(kube, namespace))
    apps.owned_by_the_app(hpa, apps.get(kube, namespace))
    selector = {"matchLabels": {"app": f"{namespace}.chat", "pool": "sockets"}}
    assert hpa["spec"]["metrics"][0]["external"]["metric"] == {"name": DEPTH, "selector": selector}

    # The real HPA controller reaches the pool's Deployment (AbleToScale) and says it cannot
    # read the external metric (no metrics adapter here).
    def controller_took_it_up() -> None:
        states = hpa_states(kube, namespace, "chat-worker-sockets")
        assert states.get("AbleToScale", {}).get("status") == "True", states
        assert "external metric" in states.get("ScalingActive", {}).get("message", ""), states

    eventually(controller_took_it_up, timeout=apps.WAIT, interval=0.5)

    def handed_over() -> None:
        for name in ("chat-worker-http", "chat-worker-sockets"):
            found = kube.get("apps/v1", "Deployment", namespace, name)
            assert found is not None and not operator_owns_replicas(found), name

    eventually(handed_over, timeout=apps.WAIT)

    def pool_status() -> None:  # no external metrics API here: the sockets pool says so
        block = apps.get(kube, namespace).get("status", {}).get("autoscaler") or {}
        reasons = {item["name"]: item["reason"] for item in block.get("pools") or []}
        assert reasons == {"http": "ScaledObject", "sockets": "ExternalMetricsUnavailable"}, block

    eventually(pool_status, timeout=apps.WAIT)

    # The sockets pool back to builtin: its HPA goes, the operator writes its count again.
    builtin = {"mode": "builtin", "maxReplicas": 5}
    fields = {**WITH_PROMETHEUS, **pools(KEDA_HTTP, builtin)}
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **fields)))
    apps.wait_gone(kube, HPA, "HorizontalPodAutoscaler", namespace, "chat-worker-sockets")

    def operator_writes_sockets() -> None:
        found = kube.get("apps/v1", "Deployment", namespace, "chat-worker-sockets")
        assert found is not None and operator_owns_replicas(found)

    eventually(operator_writes_sockets, timeout=apps.WAIT)
    assert kube.get(KEDA, "ScaledObject", namespace, "chat-worker-http") is not None


@pytest.mark.parametrize("mode", ["keda", "hpa"])
def test_the_crd_takes_pools_in_keda_and_hpa_mode(
    mode: str, kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    scaling = {"mode": mode, "minReplicas": 1, "maxReplicas": 4, "metricName": "x"}
    if mode == "keda":
        scaling["prometheus"] = {"serverAddress": PROMETHEUS, "query": "sum(x)"}
    stored = apps.apply(kube, apps.manifest(namespace, **pools(scaling, {})))
    assert stored["spec"]["workerPools"][0]["autoscaling"]["mode"] == mode
