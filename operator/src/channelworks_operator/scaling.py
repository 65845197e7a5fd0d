"""How many workers, and who decides (pure): the spec's count, the built-in autoscaler, or an
HPA/KEDA (then the operator leaves ``replicas`` to them and says so in the condition)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channelworks_operator import autoscaler, conditions, spec, status
from channelworks_operator.autoscaler import QueueSnapshot
from channelworks_operator.builders import meta

KEDA = ("keda.sh/v1alpha1", "ScaledObject")
EXTERNAL_METRICS = "external.metrics.k8s.io/v1beta1"
EXTERNAL_METRICS_API = (EXTERNAL_METRICS, "*")
# The longest label value Kubernetes accepts (the HPA's metric selector is one).
LABEL_VALUE_MAX = 63
# The workers one work shard keeps busy: each shard has one reader per pool, so a pool's worker
# beyond (shards x this) would hold no shard and idle.
WORKERS_PER_SHARD = 1
WORKER_CEILING = spec.DEFAULT_WORK_SHARDS * WORKERS_PER_SHARD  # with the default shard count
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
    pool: spec.WorkerPool | None = None,
) -> Scaling:
    """The worker count of ``pool`` (the default pool when None), whose Deployment is
    ``worker``, on the part of the queue it takes."""
    pool = pool or app.pools[0]
    scaling = pool.worker.autoscaling
    kind = conditions.AUTOSCALING
    live = live_replicas(worker)
    if not scaling.enabled:
        count = pool.worker.replicas
        field = "spec.worker.replicas" if pool.name is None else "replicas"
        message = f"autoscaling is off: {count} workers ({field})"
        return Scaling(count, count, conditions.false(kind, "Disabled", message))
    ceiling = app.channel_layer.shards * WORKERS_PER_SHARD
    ceiling_note = ""
    if scaling.max_replicas > ceiling:
        ceiling_note = (
            f" (maxReplicas {scaling.max_replicas} is over {ceiling}: the layer has "
            f"{app.channel_layer.shards} work shards and a worker beyond one per shard would "
            "idle; set spec.channelLayer.workShards when creating the app"
        )
    if scaling.mode == "builtin":
        snapshot = snapshot.of(pool) if snapshot else None
        if ceiling_note:
            ceiling_note += f"; capped at {ceiling})"
            scaling = dataclasses.replace(
                scaling,
                max_replicas=ceiling,
                min_replicas=min(scaling.min_replicas, ceiling),
            )
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
        condition = make(kind, decision.reason, decision.message + ceiling_note)
        return Scaling(decision.desired, decision.desired, condition, decision)
    if ceiling_note:
        ceiling_note += "; it scales that far regardless)"
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
            f"{scaling.max_replicas} on the queue depth in Prometheus{ceiling_note}"
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
        f"{scaling.max_replicas} on the external metric {scaling.metric_name}{ceiling_note}"
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
    return _decision_block(previous, scaling.decision, worker)


def _decision_block(
    previous: Mapping[str, Any] | None,
    decision: autoscaler.Decision | None,
    worker: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
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


@dataclass(frozen=True)
class PoolScaling:
    """One worker pool's Deployment as read, and its decided count."""

    pool: spec.WorkerPool
    worker: Mapping[str, Any] | None
    scaling: Scaling


def decide_pools(
    app: spec.App,
    workers: Mapping[str | None, Mapping[str, Any] | None],
    snapshot: QueueSnapshot | None,
    served: Mapping[tuple[str, str], bool],
    *,
    now: float,
    histories: Mapping[str | None, tuple[autoscaler.Recommendation, ...]],
) -> list[PoolScaling]:
    """``decide`` for each pool of the app, each on its own queue (``workers`` and
    ``histories`` are keyed by pool name, None for the default pool)."""
    return [
        PoolScaling(
            pool,
            workers.get(pool.name),
            decide(
                app,
                workers.get(pool.name),
                snapshot,
                served,
                now=now,
                history=histories.get(pool.name, ()),
                pool=pool,
            ),
        )
        for pool in app.pools
    ]


def combined(pools: list[PoolScaling]) -> tuple[Scaling, Mapping[str, Any] | None]:
    """The app's scaling and worker Deployment as the status and Events see them: the default
    pool's as they are; for named pools, the counts added up, the condition true when every
    pool's is, its message one part per pool, and a Deployment-like view with the summed count."""
    if len(pools) == 1 and pools[0].pool.name is None:
        return pools[0].scaling, pools[0].worker
    parts = [(str(item.pool.name), item.scaling) for item in pools]
    bad = [scaling.condition for _, scaling in parts if not scaling.condition.true]
    moved = [
        scaling
        for item, (_, scaling) in zip(pools, parts, strict=True)
        if scaling.decision is not None
        and live_replicas(item.worker) is not None
        and scaling.decision.changes(live_replicas(item.worker) or 0)
    ]
    lead = bad[0] if bad else (moved[0].condition if moved else parts[0][1].condition)
    message = "; ".join(f"pool {name}: {scaling.condition.message}" for name, scaling in parts)
    make = conditions.false if bad else conditions.true
    condition = make(conditions.AUTOSCALING, lead.reason, message)
    desired = sum(scaling.desired for _, scaling in parts)
    decisions = [scaling.decision for _, scaling in parts if scaling.decision is not None]
    decision = None
    if len(decisions) == len(parts):
        moved_messages = [
            f"pool {item.pool.name}: {item.scaling.condition.message}"
            for item in pools
            if item.scaling in moved
        ]
        decision = autoscaler.Decision(
            desired,
            lead.reason,
            "; ".join(moved_messages) or message,
            sum(d.recommended for d in decisions),
            (),
        )
    live = [live_replicas(item.worker) for item in pools]
    view = None
    if any(count is not None for count in live):
        view = {"spec": {"replicas": sum(count or 0 for count in live)}}
    return Scaling(None, desired, condition, decision), view


def total(workloads: list[status.Workload | None]) -> status.Workload | None:
    """The worker pools' Deployments as one (the status's ``worker`` block)."""
    present = [item for item in workloads if item is not None]
    if len(workloads) == 1 or not present:
        return workloads[0] if len(workloads) == 1 else None
    return status.Workload(
        desired=sum(item.desired for item in present),
        replicas=sum(item.replicas for item in present),
        ready=sum(item.ready for item in present),
        available=sum(item.available for item in present),
        updated=sum(item.updated for item in present),
        rolled_out=len(present) == len(workloads) and all(item.rolled_out for item in present),
    )


@dataclass(frozen=True)
class InterfaceScaling:
    """The interface autoscaler's run: replicas to write (None: spec.interface.replicas),
    the decision, and the connections it was made on."""

    build_replicas: int | None
    decision: autoscaler.Decision | None
    connections: int | None
    live: int | None = None  # the interface Deployment's replicas before this run

    @property
    def moved(self) -> bool:
        """Whether this run changes the interface count (an Event says so)."""
        return (
            self.decision is not None and self.live is not None and self.decision.changes(self.live)
        )


def decide_interfaces(
    app: spec.App,
    interface: Mapping[str, Any] | None,
    connections: int | None,
    *,
    now: float,
    history: tuple[autoscaler.Recommendation, ...],
) -> InterfaceScaling:
    """How many interface pods (``spec.interface.autoscaling``) for ``connections`` open
    WebSockets over all of them (None: not readable)."""
    targets = app.interface.autoscaling
    if not targets.enabled:
        return InterfaceScaling(None, None, connections)
    live = live_replicas(interface)
    decision = autoscaler.decide_interfaces(
        targets,
        current=live if live is not None else targets.min_replicas,
        connections=connections,
        now=now,
        history=history,
    )
    return InterfaceScaling(decision.desired, decision, connections, live)


def with_interfaces(condition: conditions.Condition, run: InterfaceScaling) -> conditions.Condition:
    """The Autoscaling condition with the interface autoscaler's part: its message added; its
    reason when the workers' autoscaling is off or the interfaces just moved."""
    decision = run.decision
    if decision is None:
        return condition
    part = f"interfaces: {decision.message}"
    ok = decision.reason != autoscaler.METRICS_UNAVAILABLE
    workers_off = not condition.true and condition.reason == "Disabled"
    moved = decision.reason in (autoscaler.SCALED_UP, autoscaler.SCALED_DOWN)
    if workers_off or (moved and condition.true):
        make = conditions.true if ok else conditions.false
        return make(
            conditions.AUTOSCALING, decision.reason, f"{part}; workers: {condition.message}"
        )
    make = conditions.true if condition.true and ok else conditions.false
    return make(conditions.AUTOSCALING, condition.reason, f"{condition.message}; {part}")


def interface_status_block(
    previous: Mapping[str, Any] | None, run: InterfaceScaling, interface: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """``status.interfaceAutoscaler``: the last decision, the count, when the pods last changed."""
    block = _decision_block(previous, run.decision, interface)
    if block is not None and run.connections is not None:
        block["connections"] = run.connections
    return block
