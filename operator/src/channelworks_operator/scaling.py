"""How many workers and interface pods, and who decides (pure): the spec's count, the built-in
autoscaler, or an HPA/KEDA (then the operator leaves ``replicas`` to them and says so in the
condition). No clock is read here: the callers pass ``now`` (monotonic seconds, for the
stabilization window) and the wall time of the status (``lastScaleTime``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channelworks_operator import autoscaler, conditions, spec, status, timestamps
from channelworks_operator.autoscaler import InterfaceLoad, QueueSnapshot
from channelworks_operator.builders import meta, workloads

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
    pools: tuple[PoolScaling, ...] = ()
    """The named worker pools it adds up (``combined``); empty for the default pool."""


def poll_seconds(app: spec.App) -> int | None:
    """How often the app's layer must be read: the shortest ``pollIntervalSeconds`` of its
    autoscaling that is on, in any mode (keda and hpa read the operator's queue gauges, which a
    read refreshes); None when nothing autoscales."""
    polls = [
        pool.worker.autoscaling.poll_interval_seconds
        for pool in app.pools
        if pool.worker.autoscaling.enabled
    ]
    if app.interface.autoscaling.enabled:
        polls.append(app.interface.autoscaling.poll_interval_seconds)
    return min(polls, default=None)


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
    ceiling = app.channel_layer.shards * WORKERS_PER_SHARD
    if not scaling.enabled:
        count = pool.worker.replicas
        field = _pool_field(app, pool, "replicas")
        message = f"autoscaling is off: {count} workers ({field})"
        if count > ceiling:
            message += _over_shards(app, field, count) + f"; {count - ceiling} of them idle)"
        return Scaling(count, count, conditions.false(kind, "Disabled", message))
    ceiling_note = ""
    if scaling.max_replicas > ceiling:
        field = _pool_field(app, pool, "autoscaling.maxReplicas")
        ceiling_note = _over_shards(app, field, scaling.max_replicas)
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
    name = workloads.worker_name(app.ref, pool)
    queue = "the queue" if pool.name is None else f"the queue of its channels (pool {pool.name})"
    if scaling.mode == "keda":
        if not served.get(KEDA):
            message = (
                "KEDA's ScaledObject API (keda.sh/v1alpha1) is not installed: install KEDA or "
                f"use mode builtin; workers stay at {fallback}"
            )
            return Scaling(fallback, fallback, conditions.false(kind, "KedaNotInstalled", message))
        message = (
            f"KEDA ScaledObject {name} scales workers from {scaling.min_replicas} to "
            f"{scaling.max_replicas} on {queue}: depth and oldest age in Prometheus"
            f"{ceiling_note}"
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
        f"{scaling.max_replicas} on {queue}: the external metric {scaling.metric_name}"
        f"{ceiling_note}"
    )
    return Scaling(
        None, live or fallback, conditions.true(kind, "HorizontalPodAutoscaler", message)
    )


def _pool_field(app: spec.App, pool: spec.WorkerPool, name: str) -> str:
    """The spec field ``name`` of ``pool`` as a user finds it (``spec.worker.<name>``, or
    ``spec.workerPools[<i>].<name>`` with the pool's name)."""
    if pool.name is None:
        return f"spec.worker.{name}"
    return f"spec.workerPools[{app.pools.index(pool)}].{name} (pool {pool.name})"


def _over_shards(app: spec.App, field: str, count: int) -> str:
    """Why ``count`` workers of one pool cannot all be used, and what is allowed."""
    shards = app.channel_layer.shards
    source = (
        "spec.channelLayer.workShards"
        if app.channel_layer.work_shards is not None
        else "the layer's work shards"
    )
    return (
        f" ({field} {count} cannot be used: {source} is {shards} and each shard is read by one "
        f"worker of a pool at a time, so at most {shards * WORKERS_PER_SHARD} workers of it have "
        f"work; allowed: up to {shards * WORKERS_PER_SHARD}, or raise "
        f"spec.channelLayer.workShards to {count} or more (it changes online) or leave it out "
        "to follow maxReplicas"
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
    previous: Mapping[str, Any] | None,
    scaling: Scaling,
    worker: Mapping[str, Any] | None,
    *,
    now: str | None = None,
) -> dict[str, Any] | None:
    """``status.autoscaler`` (built-in mode): the last decision, and when workers last changed
    (``now``, RFC 3339, when this run changes them); with worker pools, ``pools`` holds each
    autoscaled pool's own: its queue, its decision and why (for a pool KEDA or an HPA scales,
    who does and on what, without a count of the operator's)."""
    now = _wall(now)
    block = _decision_block(previous, scaling.decision, worker, now)
    if not scaling.pools:
        return block
    earlier = {item.get("name"): item for item in (previous or {}).get("pools") or [] if item}
    pools = []
    for item in scaling.pools:
        part = _decision_block(earlier.get(item.pool.name), item.scaling.decision, item.worker, now)
        if part is None:
            if not item.pool.worker.autoscaling.enabled:
                continue
            condition = item.scaling.condition
            part = {"reason": condition.reason, "message": condition.message}
        if item.snapshot is not None:
            part["queueDepth"] = item.snapshot.depth
            part["oldestMessageAgeSeconds"] = round(item.snapshot.oldest_age_seconds, 3)
        pools.append({"name": item.pool.name, **part})
    if block is None:
        if not pools:
            return None
        block = {"reason": scaling.condition.reason, "message": scaling.condition.message}
    block["pools"] = pools
    return block


def _wall(now: str | None) -> str:
    """The status's wall time as given; read here only for a caller that gives none."""
    return now if now is not None else timestamps.now()


def _decision_block(
    previous: Mapping[str, Any] | None,
    decision: autoscaler.Decision | None,
    worker: Mapping[str, Any] | None,
    now: str,
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
        result["lastScaleTime"] = now
    elif previous and previous.get("lastScaleTime"):
        result["lastScaleTime"] = previous["lastScaleTime"]
    return result


@dataclass(frozen=True)
class PoolScaling:
    """One worker pool's Deployment as read, and its decided count."""

    pool: spec.WorkerPool
    worker: Mapping[str, Any] | None
    scaling: Scaling
    snapshot: QueueSnapshot | None = None  # the part of the queue the pool takes


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
            snapshot.of(pool) if snapshot else None,
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
    return Scaling(None, desired, condition, decision, tuple(pools)), view


PoolFigures = tuple[str, int | None, int, int, float]


def pool_figures(pools: list[PoolScaling]) -> list[PoolFigures]:
    """Per pool, for the metrics: name ("default" for the app without ``spec.workerPools``),
    desired replicas (None where KEDA or an HPA decides) and most replicas, waiting messages
    and the oldest one's age: the pools the built-in autoscaler decided, and the named pools a
    ScaledObject or HPA scales on these very gauges (when their queue was read)."""
    return [
        (
            item.pool.name or "default",
            item.scaling.decision.desired if item.scaling.decision is not None else None,
            item.pool.worker.autoscaling.max_replicas,
            item.snapshot.depth if item.snapshot else 0,
            item.snapshot.oldest_age_seconds if item.snapshot else 0.0,
        )
        for item in pools
        if item.scaling.decision is not None
        or (
            item.pool.name is not None
            and item.snapshot is not None
            and item.pool.worker.autoscaling.enabled
            and item.pool.worker.autoscaling.mode != "builtin"
        )
    ]


def handovers(pools: list[PoolScaling], interfaces: InterfaceScaling) -> list[Mapping[str, Any]]:
    """The Deployments whose count KEDA or an HPA takes over this run (``build_replicas``
    None): their current count is kept by ``HANDOVER_MANAGER`` (see ``holds_replicas``)."""
    found = [item.worker for item in pools if item.scaling.build_replicas is None and item.worker]
    if interfaces.external and interfaces.deployment is not None:
        found.append(interfaces.deployment)
    return found


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
    """The interface autoscaler's run: replicas to write (None: spec.interface.replicas, or
    KEDA/an HPA owns them when ``external``), the decision, and the load it was made on."""

    build_replicas: int | None
    decision: autoscaler.Decision | None
    load: InterfaceLoad | None
    live: int | None = None  # the interface Deployment's replicas before this run
    deployment: Mapping[str, Any] | None = None  # the interface Deployment as read
    condition: conditions.Condition | None = None  # modes keda and hpa: who scales, on what
    external: bool = False  # KEDA or an HPA owns the count (no replicas written)

    @property
    def connections(self) -> int | None:
        return None if self.load is None else self.load.connections

    @property
    def moved(self) -> bool:
        """Whether this run changes the interface count (an Event says so)."""
        return (
            self.decision is not None and self.live is not None and self.decision.changes(self.live)
        )


def decide_interfaces(
    app: spec.App,
    interface: Mapping[str, Any] | None,
    load: InterfaceLoad | int | None,
    *,
    now: float,
    history: tuple[autoscaler.Recommendation, ...],
    served: Mapping[tuple[str, str], bool] | None = None,
) -> InterfaceScaling:
    """How many interface pods (``spec.interface.autoscaling``) for the ``load`` the pods
    reported (a bare number: the open WebSockets alone; None: not readable). Modes keda and
    hpa leave the count to the ScaledObject/HPA (``served`` None: KEDA assumed installed)."""
    targets = app.interface.autoscaling
    if isinstance(load, int):
        load = InterfaceLoad(load)
    if not targets.enabled:
        return InterfaceScaling(None, None, load)
    live = live_replicas(interface)
    note = _unreachable_target(app)
    if targets.mode != "builtin":
        run = _external_interfaces(app, interface, load, live, served)
        if run.condition is None or not note:
            return run
        condition = dataclasses.replace(run.condition, message=run.condition.message + note)
        return dataclasses.replace(run, condition=condition)
    decision = autoscaler.decide_interfaces(
        targets,
        current=live if live is not None else targets.min_replicas,
        load=load,
        now=now,
        history=history,
    )
    if note:
        decision = dataclasses.replace(decision, message=decision.message + note)
    return InterfaceScaling(decision.desired, decision, load, live, interface)


def _unreachable_target(app: spec.App) -> str:
    """Why ``targetConnectionsPerPod`` cannot be used when it is over what one interface pod
    takes (pods refuse sockets with 503 before the count reaches it, so it never scales out on
    connections), and what is allowed; empty when it can be."""
    target = app.interface.autoscaling.target_connections
    limit = spec.interface_connection_limit(app.interface)
    if target <= limit:
        return ""
    return (
        f" (spec.interface.autoscaling.targetConnectionsPerPod {target} cannot be used: an "
        f"interface pod takes at most {limit} connections ({spec.INTERFACE_MAX_CONNECTIONS_ENV}) "
        f"and refuses more with 503, so pods never reach it; allowed: up to {limit}, or raise "
        f"{spec.INTERFACE_MAX_CONNECTIONS_ENV} in spec.interface.env)"
    )


def _external_interfaces(
    app: spec.App,
    interface: Mapping[str, Any] | None,
    load: InterfaceLoad | None,
    live: int | None,
    served: Mapping[tuple[str, str], bool] | None,
) -> InterfaceScaling:
    targets = app.interface.autoscaling
    name = meta.interface_name(app.ref)
    kind = conditions.AUTOSCALING
    cpu = f"{targets.target_cpu_percent * 10}m CPU per pod"
    if targets.mode == "keda":
        if served is not None and not served.get(KEDA):
            fallback = targets.min_replicas
            message = (
                "KEDA's ScaledObject API (keda.sh/v1alpha1) is not installed: install KEDA or "
                f"use mode builtin; interface pods stay at {fallback}"
            )
            condition = conditions.false(kind, "KedaNotInstalled", message)
            return InterfaceScaling(fallback, None, load, live, interface, condition)
        on = cpu
        if targets.prometheus_address:
            on += f" and {targets.target_connections} open connections per pod (Prometheus)"
        message = (
            f"KEDA ScaledObject {name} scales interface pods from {targets.min_replicas} to "
            f"{targets.max_replicas} on {on}"
        )
        condition = conditions.true(kind, "ScaledObject", message)
    else:
        condition = _interface_hpa_condition(app, served)
    return InterfaceScaling(None, None, load, live, interface, condition, external=True)


def _interface_hpa_condition(
    app: spec.App, served: Mapping[tuple[str, str], bool] | None
) -> conditions.Condition:
    targets = app.interface.autoscaling
    name = meta.interface_name(app.ref)
    kind = conditions.AUTOSCALING
    cpu = f"{targets.target_cpu_percent * 10}m CPU per pod"
    metric = targets.metric_name
    if metric and len(app.ref.prefix) > LABEL_VALUE_MAX:
        message = (
            f"HorizontalPodAutoscaler {name} selects {metric} by the label app={app.ref.prefix}, "
            f"over the {LABEL_VALUE_MAX} characters a label value may have: shorten the "
            "namespace or the app's name, or leave metricName out (CPU alone)"
        )
        return conditions.false(kind, "MetricSelectorTooLong", message)
    if metric and served is not None and not served.get(EXTERNAL_METRICS_API):
        message = (
            f"HorizontalPodAutoscaler {name} needs the external metrics API ({EXTERNAL_METRICS}) "
            f"serving {metric}; none is installed, so it cannot scale in (leave metricName out "
            "to scale on CPU alone)"
        )
        return conditions.false(kind, "ExternalMetricsUnavailable", message)
    on = cpu + (
        f" and {targets.target_connections} open connections per pod ({metric})" if metric else ""
    )
    message = (
        f"HorizontalPodAutoscaler {name} scales interface pods from {targets.min_replicas} "
        f"to {targets.max_replicas} on {on}"
    )
    return conditions.true(kind, "HorizontalPodAutoscaler", message)


def with_interfaces(condition: conditions.Condition, run: InterfaceScaling) -> conditions.Condition:
    """The Autoscaling condition with the interface autoscaler's part: its message added; its
    reason when the workers' autoscaling is off or the interfaces just moved."""
    decision = run.decision
    if decision is None:
        if run.condition is None:
            return condition
        decision = autoscaler.Decision(0, run.condition.reason, run.condition.message, 0, ())
        ok = run.condition.true
    else:
        ok = decision.reason != autoscaler.METRICS_UNAVAILABLE
    part = f"interfaces: {decision.message}"
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
    previous: Mapping[str, Any] | None,
    run: InterfaceScaling,
    interface: Mapping[str, Any] | None,
    *,
    now: str | None = None,
) -> dict[str, Any] | None:
    """``status.interfaceAutoscaler``: the last decision, the load it was made on, when the pods
    last changed (``now``, RFC 3339, when this run changes them)."""
    block = _decision_block(previous, run.decision, interface, _wall(now))
    if block is not None and run.load is not None:
        block["connections"] = run.load.connections
        if run.load.cpu_percent is not None:
            block["cpuPercent"] = round(run.load.cpu_percent, 1)
    return block


def draining_block(
    app: spec.App,
    pods: tuple[str, ...] | None,
    interface: status.Workload | None,
    autoscaler_block: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """``status.interface.draining`` and ``drainingReason``: the interface pods on their way out
    (deleted, still closing their sockets) and why; None when the pods were not read."""
    if pods is None:
        return None
    if not pods:
        return {"draining": 0}
    names = ", ".join(pods)
    if interface is not None and not interface.rolled_out and interface.updated < interface.desired:
        why = "a rollout replaces them"
    else:
        desired = interface.desired if interface is not None else "fewer"
        why = f"scaled in to {desired} pods"
        last = (autoscaler_block or {}).get("lastScaleTime")
        if last:
            why += f" (the interface autoscaler last changed the count at {last})"
    message = (
        f"{len(pods)} interface pods draining ({names}): {why}; each takes no new sockets, "
        "closes its open ones with 1012 spread over its drain window so clients reconnect to "
        f"the other pods, and exits within {app.interface.grace_seconds} s "
        "(spec.interface.terminationGracePeriodSeconds)"
    )
    return {"draining": len(pods), "drainingReason": message}
