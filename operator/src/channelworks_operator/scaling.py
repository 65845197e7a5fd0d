"""How many workers, and who decides (pure): the spec's count, the built-in autoscaler, or an
HPA/KEDA (then the operator leaves ``replicas`` to them and says so in the condition)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channelworks_operator import autoscaler, conditions, spec
from channelworks_operator.autoscaler import QueueSnapshot
from channelworks_operator.builders import meta

KEDA = ("keda.sh/v1alpha1", "ScaledObject")
EXTERNAL_METRICS = "external.metrics.k8s.io/v1beta1"
EXTERNAL_METRICS_API = (EXTERNAL_METRICS, "*")
# The longest label value Kubernetes accepts (the HPA's metric selector is one).
LABEL_VALUE_MAX = 63
# The field manager that keeps the worker count while KEDA or an HPA takes it over.
HANDOVER_MANAGER = "channelworks-operator-handover"


@dataclass(frozen=True)
class Scaling:
    """What the autoscaling part of a run decided."""

    build_replicas: int | None
    """Replicas to write into the worker Deployment (None: an HPA or KEDA owns them)."""
    desired: int
    condition: conditions.Condition
    decision: autoscaler.Decision | None = None


def live_replicas(worker: Mapping[str, Any] | None) -> int | None:
    return None if worker is None else int(worker.get("spec", {}).get("replicas", 1))


def decide(
    app: spec.App,
    worker: Mapping[str, Any] | None,
    snapshot: QueueSnapshot | None,
    served: Mapping[tuple[str, str], bool],
    *,
    now: float,
    history: tuple[autoscaler.Recommendation, ...],
) -> Scaling:
    scaling = app.worker.autoscaling
    kind = conditions.AUTOSCALING
    live = live_replicas(worker)
    if not scaling.enabled:
        count = app.worker.replicas
        message = f"autoscaling is off: {count} workers (spec.worker.replicas)"
        return Scaling(count, count, conditions.false(kind, "Disabled", message))
    if scaling.mode == "builtin":
        decision = autoscaler.decide(
            scaling,
            current=live if live is not None else scaling.min_replicas,
            depth=snapshot.depth if snapshot else None,
            oldest_age_seconds=snapshot.oldest_age_seconds if snapshot else 0.0,
            now=now,
            history=history,
        )
        ok = decision.reason != autoscaler.METRICS_UNAVAILABLE
        make = conditions.true if ok else conditions.false
        condition = make(kind, decision.reason, decision.message)
        return Scaling(decision.desired, decision.desired, condition, decision)
    fallback = max(1, scaling.min_replicas)
    name = meta.worker_name(app.ref)
    if scaling.mode == "keda":
        if not served.get(KEDA):
            message = (
                "KEDA's ScaledObject API (keda.sh/v1alpha1) is not installed: install KEDA or "
                f"use mode builtin; workers stay at {fallback}"
            )
            return Scaling(fallback, fallback, conditions.false(kind, "KedaNotInstalled", message))
        message = (
            f"KEDA ScaledObject {name} scales workers from {scaling.min_replicas} to "
            f"{scaling.max_replicas} on the queue depth in Prometheus"
        )
        return Scaling(None, live or fallback, conditions.true(kind, "ScaledObject", message))
    selected_by = app.ref.prefix
    if len(selected_by) > LABEL_VALUE_MAX:
        message = (
            f"HorizontalPodAutoscaler {name} selects its external metric by the label "
            f"app={selected_by}, {len(selected_by)} characters, but a label value has at most "
            f"{LABEL_VALUE_MAX}: shorten the namespace or the app's name, or use mode builtin "
            "or keda"
        )
        condition = conditions.false(kind, "MetricSelectorTooLong", message)
        return Scaling(None, live or fallback, condition)
    if not served.get(EXTERNAL_METRICS_API):
        message = (
            f"HorizontalPodAutoscaler {name} needs the external metrics API ({EXTERNAL_METRICS}) "
            f"serving {scaling.metric_name}; none is installed"
        )
        condition = conditions.false(kind, "ExternalMetricsUnavailable", message)
        return Scaling(None, live or fallback, condition)
    message = (
        f"HorizontalPodAutoscaler {name} scales workers from {fallback} to "
        f"{scaling.max_replicas} on the external metric {scaling.metric_name}"
    )
    return Scaling(
        None, live or fallback, conditions.true(kind, "HorizontalPodAutoscaler", message)
    )


def holds_replicas(worker: Mapping[str, Any] | None, manager: str) -> bool:
    """Whether ``manager``'s server-side apply owns the worker Deployment's ``spec.replicas``.

    Leaving out a field that only the applier owns removes it: the Deployment would fall back
    to one replica. So before KEDA or an HPA takes the count over, a second field manager
    (``HANDOVER_MANAGER``) applies the current count and keeps it until the autoscaler sets it.
    """
    for entry in (worker or {}).get("metadata", {}).get("managedFields") or []:
        ours = entry.get("manager") == manager and entry.get("operation") == "Apply"
        if ours and not entry.get("subresource"):
            return "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    return False


def handover(worker: Mapping[str, Any]) -> dict[str, Any]:
    """What ``HANDOVER_MANAGER`` applies: the worker Deployment's current count, nothing else."""
    metadata = worker["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
        "spec": {"replicas": live_replicas(worker)},
    }


def status_block(
    previous: Mapping[str, Any] | None, scaling: Scaling, worker: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """``status.autoscaler`` (built-in mode): the last decision, and when workers last changed."""
    decision = scaling.decision
    if decision is None:
        return None
    current = live_replicas(worker)
    result: dict[str, Any] = {
        "desiredReplicas": decision.desired,
        "reason": decision.reason,
        "message": decision.message,
    }
    if current is not None and decision.changes(current):
        result["lastScaleTime"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif previous and previous.get("lastScaleTime"):
        result["lastScaleTime"] = previous["lastScaleTime"]
    return result
