"""ServiceMonitor / PodMonitor on the real control plane: made when the Prometheus Operator's
CRDs are served (also when they are installed after the operator started), selecting the pods
and ports that really serve metrics; absent without them, with the app Ready, no failed
reconcile and no retry storm; switching kinds or turning monitoring off removes the old ones."""

from __future__ import annotations

import time
from typing import Any

from channelworks_operator.kube import Kube
from tests.operator import apps, optional_apis
from tests.operator.conftest import OperatorFactory
from tests.operator.operator_process import TEST_TIMINGS, OperatorProcess
from tests.support.eventually import eventually

MONITORING = "monitoring.coreos.com/v1"
RESYNC_SECONDS = float(TEST_TIMINGS["CHANNELWORKS_OPERATOR_RESYNC_SECONDS"])
QUIET_WINDOW_SECONDS = 3 * RESYNC_SECONDS
GARBAGE_COLLECTION_WAIT = 90.0
# Reconciles allowed in the quiet window: one per resync, and a few for Deployment status events.
QUIET_RECONCILES = 3 + 3


def runs_quietly(operator: OperatorProcess) -> None:
    """No failed or blocked reconcile, no traceback, and no more runs than the resync makes."""
    before = operator.reconciles()
    time.sleep(QUIET_WINDOW_SECONDS)
    runs = operator.reconciles() - before
    assert runs <= QUIET_RECONCILES, f"{runs} reconciles in {QUIET_WINDOW_SECONDS:g}s"
    operator.assert_ran_cleanly()


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions with In) against an object's labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_monitoring_waits_for_the_crds_then_a_pod_monitor_follows_their_install(
    kube: Kube,
    crds: optional_apis.Crds,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
) -> None:
    crds.remove(optional_apis.PROMETHEUS_OPERATOR)
    operator = operators()
    monitoring = {"interval": "15s", "labels": {"release": "prometheus"}}
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, monitoring=monitoring)))
    app = apps.wait_condition(kube, namespace, "Ready", "True")

    # Monitoring is on by default; without the Prometheus Operator there is simply no monitor.
    assert "PodMonitor" not in optional_apis.served_kinds(kube, MONITORING)
    assert kube.get("v1", "Service", namespace, "chat-metrics") is None
    runs_quietly(operator)
    assert apps.condition(apps.get(kube, namespace), "Ready")["status"] == "True"

    # The Prometheus Operator is installed while the operator runs: the monitor follows.
    crds.install(optional_apis.PROMETHEUS_OPERATOR)
    monitor = apps.wait_for(kube, MONITORING, "PodMonitor", namespace, "chat")
    apps.owned_by_the_app(monitor, app)
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/component"] == "monitoring"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "15s"}

    # It selects exactly the interface and worker pods, and each has the port it scrapes.
    pods = kube.list("v1", "Pod", namespace, "app.kubernetes.io/instance=chat")
    selected = [p for p in pods if selects(monitor["spec"]["selector"], p["metadata"]["labels"])]
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in selected}
    assert components == {"interface", "worker"}
    for pod in selected:
        ports = {
            port.get("name"): port["containerPort"]
            for container in pod["spec"]["containers"]
            for port in container.get("ports", [])
        }
        assert ports["metrics"] == 9100, pod["metadata"]["name"]
    assert kube.get(MONITORING, "ServiceMonitor", namespace, "chat") is None
    runs_quietly(operator)

    # Deleting the app takes the monitor with it (the garbage collector follows the owner
    # reference; it starts watching a new kind within its 30 s resync).
    kube.delete("channelworks.dev/v1alpha1", "RealtimeApp", namespace, "chat")
    eventually(
        lambda: kube.get(MONITORING, "PodMonitor", namespace, "chat") is None,
        timeout=GARBAGE_COLLECTION_WAIT,
        interval=0.5,
        message="PodMonitor collected with its app",
    )


def test_a_service_monitor_scrapes_the_metrics_service_and_the_kind_can_change(
    kube: Kube,
    crds: optional_apis.Crds,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
) -> None:
    crds.install(optional_apis.PROMETHEUS_OPERATOR)
    operators()
    fields = apps.external(redis_url, monitoring={"kind": "ServiceMonitor"})
    apps.apply(kube, apps.manifest(namespace, **fields))
    app = apps.wait_condition(kube, namespace, "Ready", "True")

    monitor = apps.wait_for(kube, MONITORING, "ServiceMonitor", namespace, "chat")
    service = apps.wait_for(kube, "v1", "Service", namespace, "chat-metrics")
    apps.owned_by_the_app(monitor, app)
    apps.owned_by_the_app(service, app)
    # The monitor selects the metrics Service, and scrapes the port that Service has.
    assert selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "30s"}
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("metrics", 9100)]
    # The Service's own selector reaches the interface and worker pods (and Redis, which has
    # no metrics port: the Service simply has no endpoint for it).
    pods = kube.list("v1", "Pod", namespace, "app.kubernetes.io/instance=chat")
    selected = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in pods
        if selects({"matchLabels": service["spec"]["selector"]}, p["metadata"]["labels"])
    }
    assert {"interface", "worker"} <= selected
    assert kube.get(MONITORING, "PodMonitor", namespace, "chat") is None

    # ServiceMonitor -> PodMonitor: the ServiceMonitor and its Service go, a PodMonitor comes.
    fields = apps.external(redis_url, monitoring={"kind": "PodMonitor"})
    apps.apply(kube, apps.manifest(namespace, **fields))
    apps.wait_for(kube, MONITORING, "PodMonitor", namespace, "chat")
    apps.wait_gone(kube, MONITORING, "ServiceMonitor", namespace, "chat")
    apps.wait_gone(kube, "v1", "Service", namespace, "chat-metrics")

    # Monitoring off: no monitor at all, and an Event says what was removed.
    fields = apps.external(redis_url, monitoring={"enabled": False})
    apps.apply(kube, apps.manifest(namespace, **fields))
    apps.wait_gone(kube, MONITORING, "PodMonitor", namespace, "chat")

    def removal_reported() -> None:
        messages = " ".join(e["message"] for e in apps.events(kube, namespace, "Deleted"))
        for child in ("ServiceMonitor/chat", "Service/chat-metrics", "PodMonitor/chat"):
            assert child in messages, messages

    eventually(removal_reported, timeout=apps.WAIT, interval=0.5)


def test_uninstalling_the_prometheus_operator_leaves_the_app_running(
    kube: Kube,
    crds: optional_apis.Crds,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
) -> None:
    crds.install(optional_apis.PROMETHEUS_OPERATOR)
    operator = operators()
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    apps.wait_condition(kube, namespace, "Ready", "True")
    apps.wait_for(kube, MONITORING, "PodMonitor", namespace, "chat")

    crds.remove(optional_apis.PROMETHEUS_OPERATOR)  # its objects go with it
    removed_at = operator.reconciles()

    # The next runs still believe in the PodMonitor kind for a while (discovery is cached): the
    # apply finds it gone and the run goes on without it; nothing fails, nothing is retried.
    eventually(
        lambda: operator.reconciles() >= removed_at + 3,
        timeout=apps.WAIT,
        interval=0.5,
        message="three reconciles after the CRDs went away",
    )
    runs_quietly(operator)
    assert apps.condition(apps.get(kube, namespace), "Ready")["status"] == "True"
    assert kube.get("apps/v1", "Deployment", namespace, "chat-worker") is not None
