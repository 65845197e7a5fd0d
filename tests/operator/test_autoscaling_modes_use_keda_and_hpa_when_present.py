"""Autoscaling modes keda and hpa on the real control plane: a KEDA ScaledObject when that API is
served (also when KEDA is installed after the operator started), a clear Autoscaling condition
when it is not; an autoscaling/v2 HPA on the external metrics (queue depth and oldest age) that
the real HPA controller takes up; the operator leaves the worker count to them, and takes it back
(removing the ScaledObject or HPA) when the mode changes. The interface pods get their own
ScaledObject or HPA (CPU, and connections) in the same modes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channelworks_operator.kube import Kube
from tests.operator import apps, optional_apis
from tests.operator import test_autoscaler_follows_a_real_queue as real_queue
from tests.operator.conftest import OperatorFactory
from tests.operator.operator_process import TEST_TIMINGS, OperatorProcess
from tests.support.eventually import eventually

KEDA = "keda.sh/v1alpha1"
HPA = "autoscaling/v2"
PROMETHEUS = "http://prometheus.monitoring.svc:9090"
LABEL_VALUE_MAX = 63
RESYNC_SECONDS = float(TEST_TIMINGS["CHANNELWORKS_OPERATOR_RESYNC_SECONDS"])


def autoscaling(mode: str, **fields: Any) -> dict[str, Any]:
    return {"worker": {"autoscaling": {"mode": mode, **fields}}}


def keda(**fields: Any) -> dict[str, Any]:
    return autoscaling("keda", prometheus={"serverAddress": PROMETHEUS}, **fields)


def worker(kube: Kube, namespace: str) -> dict[str, Any]:
    found = kube.get("apps/v1", "Deployment", namespace, "chat-worker")
    assert found is not None
    return found


def operator_owns_replicas(deployment: dict[str, Any]) -> bool:
    """Whether the operator's server-side apply holds the worker Deployment's spec.replicas."""
    for entry in deployment["metadata"].get("managedFields") or []:
        if entry.get("manager") == "channelworks-operator" and entry.get("operation") == "Apply":
            return "f:replicas" in entry.get("fieldsV1", {}).get("f:spec", {})
    return False


def scale_by_hand(kube: Kube, namespace: str, replicas: int) -> None:
    """What KEDA's or an HPA's controller does: set the worker count on the scale subresource."""
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/chat-worker/scale",
        query={"fieldManager": "an-autoscaler"},
        body={"spec": {"replicas": replicas}},
        content_type="application/merge-patch+json",
    )


def hpa_states(kube: Kube, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    """The HorizontalPodAutoscaler's conditions by type, as its real controller set them."""
    found = kube.get(HPA, "HorizontalPodAutoscaler", namespace, name)
    assert found is not None
    return {c["type"]: c for c in (found.get("status") or {}).get("conditions") or []}


def full_passes(operator: OperatorProcess, count: int) -> None:
    """Wait until the operator has run ``count`` more reconciles, at least one resync apart."""
    before = operator.reconciles()
    time.sleep(RESYNC_SECONDS)
    eventually(
        lambda: operator.reconciles() >= before + count,
        timeout=apps.WAIT,
        interval=0.5,
        message=f"{count} more reconciles",
    )


def test_keda_mode_says_keda_is_missing_then_writes_a_scaled_object_once_it_is_installed(
    kube: Kube,
    crds: optional_apis.Crds,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
) -> None:
    crds.remove(optional_apis.KEDA)
    operator = operators()
    fields = keda(minReplicas=2, maxReplicas=7, targetQueueDepth=50, pollIntervalSeconds=20)
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **fields)))

    # No KEDA: the condition says so and what to do; the workers stay at minReplicas.
    app = apps.wait_condition(kube, namespace, "Autoscaling", "False", reason="KedaNotInstalled")
    message = apps.condition(app, "Autoscaling")["message"]
    assert "keda.sh/v1alpha1" in message and "workers stay at 2" in message, message
    eventually(lambda: worker(kube, namespace)["spec"]["replicas"] == 2, timeout=apps.WAIT)
    apps.wait_condition(kube, namespace, "Ready", "True")
    full_passes(operator, 2)
    operator.assert_ran_cleanly()
    assert kube.get("autoscaling/v2", "HorizontalPodAutoscaler", namespace, "chat-worker") is None

    # KEDA is installed while the operator runs: the ScaledObject follows.
    crds.install(optional_apis.KEDA)
    scaled = apps.wait_for(kube, KEDA, "ScaledObject", namespace, "chat-worker")
    apps.owned_by_the_app(scaled, apps.get(kube, namespace))
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "chat-worker",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 7)
    assert spec["pollingInterval"] == 20
    trigger, age = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["serverAddress"] == PROMETHEUS
    query = f'sum(channelworks_layer_queue_depth{{app="{namespace}.chat"}})'
    assert trigger["metadata"]["query"] == query
    assert trigger["metadata"]["threshold"] == "50"
    # The oldest message's age: workers grow in proportion to how late it is (Value).
    assert (age["type"], age["metricType"]) == ("prometheus", "Value")
    query = f'max(channelworks_layer_oldest_message_age_seconds{{app="{namespace}.chat"}})'
    assert (age["metadata"]["query"], age["metadata"]["threshold"]) == (query, "10")
    app = apps.wait_condition(kube, namespace, "Autoscaling", "True", reason="ScaledObject")
    assert "from 2 to 7" in apps.condition(app, "Autoscaling")["message"]

    # KEDA owns the worker count now: the operator no longer writes it, nor undoes KEDA's.
    eventually(lambda: not operator_owns_replicas(worker(kube, namespace)), timeout=apps.WAIT)
    assert worker(kube, namespace)["spec"]["replicas"] == 2, "handing over changed the workers"
    scale_by_hand(kube, namespace, 5)
    full_passes(operator, 2)
    assert worker(kube, namespace)["spec"]["replicas"] == 5
    operator.assert_ran_cleanly()

    # What KEDA's query sums: the operator keeps exporting the app's queue from the real Redis.
    asyncio.run(real_queue.fill(redis_url, f"{namespace}.chat"))
    queue = {"app": f"{namespace}.chat", "channel": "websocket.receive"}
    eventually(
        lambda: operator.metric("channelworks_layer_queue_depth", queue) == real_queue.MESSAGES,
        timeout=apps.WAIT,
        interval=1,
    )

    # Back to the built-in autoscaler: the ScaledObject goes, the operator sets the count again.
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **autoscaling("builtin"))))
    apps.wait_gone(kube, KEDA, "ScaledObject", namespace, "chat-worker")
    apps.wait_condition(kube, namespace, "Autoscaling", "True")
    eventually(lambda: operator_owns_replicas(worker(kube, namespace)), timeout=apps.WAIT)
    eventually(lambda: apps.events(kube, namespace, "Deleted"), timeout=apps.WAIT)


def test_hpa_on_the_external_metric_then_keda(  # short: app=<namespace>.chat fits a label
    kube: Kube,
    crds: optional_apis.Crds,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
) -> None:
    assert len(f"{namespace}.chat") <= LABEL_VALUE_MAX
    crds.install(optional_apis.KEDA)
    operators()
    fields = autoscaling(
        "hpa",
        minReplicas=2,
        maxReplicas=6,
        targetQueueDepth=40,
        metricName="chat_queue_depth",
        scaleDownStabilizationSeconds=90,
    )
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **fields)))

    hpa = apps.wait_for(kube, HPA, "HorizontalPodAutoscaler", namespace, "chat-worker")
    apps.owned_by_the_app(hpa, apps.get(kube, namespace))
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "chat-worker",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 90
    metric, age = spec["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"] == {
        "name": "chat_queue_depth",
        "selector": {"matchLabels": {"app": f"{namespace}.chat"}},
    }
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "40"}
    assert age["external"]["metric"] == {
        "name": "channelworks_layer_oldest_message_age_seconds",
        "selector": {"matchLabels": {"app": f"{namespace}.chat"}},
    }
    assert age["external"]["target"] == {"type": "Value", "value": "10"}
    assert kube.get(KEDA, "ScaledObject", namespace, "chat-worker") is None

    # The real HPA controller takes it up: it reaches the worker Deployment's scale, and says it
    # cannot read the external metric (no metrics adapter here); the app's condition says so too.
    def controller_took_it_up() -> None:
        states = hpa_states(kube, namespace, "chat-worker")
        assert states.get("AbleToScale", {}).get("status") == "True", states
        assert states.get("ScalingActive", {}).get("status") == "False", states
        assert "external metric" in states["ScalingActive"]["message"], states

    eventually(controller_took_it_up, timeout=apps.WAIT, interval=0.5)
    app = apps.wait_condition(
        kube, namespace, "Autoscaling", "False", reason="ExternalMetricsUnavailable"
    )
    assert "chat_queue_depth" in apps.condition(app, "Autoscaling")["message"]
    assert not operator_owns_replicas(worker(kube, namespace))
    apps.wait_condition(kube, namespace, "Ready", "True")

    # hpa -> keda: the HPA goes, the ScaledObject comes.
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **keda(maxReplicas=6))))
    apps.wait_for(kube, KEDA, "ScaledObject", namespace, "chat-worker")
    apps.wait_gone(kube, HPA, "HorizontalPodAutoscaler", namespace, "chat-worker")
    apps.wait_condition(kube, namespace, "Autoscaling", "True", reason="ScaledObject")

    # Autoscaling off: the ScaledObject goes and the operator sets spec.worker.replicas.
    fixed = {"worker": {"autoscaling": {"enabled": False}, "replicas": 3}}
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **fixed)))
    apps.wait_gone(kube, KEDA, "ScaledObject", namespace, "chat-worker")
    eventually(lambda: worker(kube, namespace)["spec"]["replicas"] == 3, timeout=apps.WAIT)
    assert operator_owns_replicas(worker(kube, namespace))
    apps.wait_condition(kube, namespace, "Autoscaling", "False", reason="Disabled")


def test_an_hpa_cannot_select_its_metric_when_namespace_and_app_name_are_too_long_together(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    prefix = f"{namespace}.chat"
    assert len(prefix) > LABEL_VALUE_MAX  # the test's name makes the namespace long enough
    operators()
    fields = autoscaling("hpa", minReplicas=1, maxReplicas=4)
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **fields)))

    app = apps.wait_condition(
        kube, namespace, "Autoscaling", "False", reason="MetricSelectorTooLong"
    )
    message = apps.condition(app, "Autoscaling")["message"]
    assert f"app={prefix}" in message and "at most 63" in message, message

    # The condition tells what the real HPA controller finds.
    def controller_refuses_the_selector() -> None:
        states = hpa_states(kube, namespace, "chat-worker")
        active = states.get("ScalingActive", {})
        assert active.get("status") == "False", states
        assert "must be no more than 63 characters" in active.get("message", ""), active

    eventually(controller_refuses_the_selector, timeout=apps.WAIT, interval=0.5)


def interface(kube: Kube, namespace: str) -> dict[str, Any]:
    found = kube.get("apps/v1", "Deployment", namespace, "chat-interface")
    assert found is not None
    return found


def test_interface_pods_get_a_scaled_object_or_an_hpa_on_cpu_and_connections(
    kube: Kube,
    crds: optional_apis.Crds,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
) -> None:
    crds.install(optional_apis.KEDA)
    operators()
    scaling = {
        "enabled": True,
        "mode": "keda",
        "minReplicas": 2,
        "maxReplicas": 5,
        "targetCPUPercent": 50,
        "targetConnectionsPerPod": 300,
        "prometheus": {"serverAddress": PROMETHEUS},
    }
    fields = apps.external(redis_url, interface={"autoscaling": scaling})
    apps.apply(kube, apps.manifest(namespace, **fields))

    scaled = apps.wait_for(kube, KEDA, "ScaledObject", namespace, "chat-interface")
    apps.owned_by_the_app(scaled, apps.get(kube, namespace))
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "chat-interface"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 5)
    cpu, connections = spec["triggers"]
    assert cpu == {"type": "cpu", "metricType": "AverageValue", "metadata": {"value": "500m"}}
    query = f'sum(channelworks_operator_interface_connections{{app="{namespace}.chat"}})'
    assert connections["metadata"]["query"] == query
    assert connections["metadata"]["threshold"] == "300"
    app = apps.wait_condition(kube, namespace, "Autoscaling", "True")
    message = apps.condition(app, "Autoscaling")["message"]
    assert "interfaces: KEDA ScaledObject chat-interface" in message, message
    eventually(lambda: not operator_owns_replicas(interface(kube, namespace)), timeout=apps.WAIT)
    assert kube.get(KEDA, "ScaledObject", namespace, "chat-worker") is None  # workers: builtin

    # keda -> hpa: the ScaledObject goes, an HPA on CPU (and the connection metric) comes, and
    # the real HPA controller takes it up.
    scaling = {
        **scaling,
        "mode": "hpa",
        "metricName": "chat_connections",
    }
    del scaling["prometheus"]
    fields = apps.external(redis_url, interface={"autoscaling": scaling})
    apps.apply(kube, apps.manifest(namespace, **fields))
    hpa = apps.wait_for(kube, HPA, "HorizontalPodAutoscaler", namespace, "chat-interface")
    apps.wait_gone(kube, KEDA, "ScaledObject", namespace, "chat-interface")
    cpu, connections = hpa["spec"]["metrics"]
    assert cpu == {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "500m"}},
    }
    assert connections["external"]["metric"]["name"] == "chat_connections"
    assert connections["external"]["target"] == {"type": "AverageValue", "averageValue": "300"}

    def controller_took_it_up() -> None:
        states = hpa_states(kube, namespace, "chat-interface")
        assert states.get("AbleToScale", {}).get("status") == "True", states

    eventually(controller_took_it_up, timeout=apps.WAIT, interval=0.5)
    assert not operator_owns_replicas(interface(kube, namespace))

    # Back to builtin: the HPA goes and the operator writes the interface count again.
    builtin = {"enabled": True, "minReplicas": 3, "maxReplicas": 5}
    fields = apps.external(redis_url, interface={"autoscaling": builtin})
    apps.apply(kube, apps.manifest(namespace, **fields))
    apps.wait_gone(kube, HPA, "HorizontalPodAutoscaler", namespace, "chat-interface")
    eventually(lambda: interface(kube, namespace)["spec"]["replicas"] == 3, timeout=apps.WAIT)
    assert operator_owns_replicas(interface(kube, namespace))
