"""The RealtimeApp's status, computed from what reconcile observed (pure).

``build`` returns the whole ``status`` object: observedGeneration, phase, conditions (Ready,
InterfaceAvailable, WorkersAvailable, ChannelLayerReady, Autoscaling, Migrated), replica counts,
queue depth, endpoint, the migration of the newest image. Reconcile writes it only when it
differs from what the object already has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channelworks_operator import conditions, release, spec
from channelworks_operator.builders import meta
from channelworks_operator.conditions import Condition

PENDING = "Pending"
PROGRESSING = "Progressing"
READY = "Ready"
DEGRADED = "Degraded"
FAILED = "Failed"
UNKNOWN = "Unknown"

INVALID_SPEC = "InvalidSpec"
OPERATOR_STOPPED = "OperatorStopped"


@dataclass(frozen=True)
class Workload:
    """The parts of a Deployment's or StatefulSet's state the status is made of."""

    desired: int
    replicas: int
    ready: int
    available: int
    updated: int
    rolled_out: bool

    @classmethod
    def of(cls, obj: Mapping[str, Any] | None) -> Workload | None:
        if obj is None:
            return None
        generation = int(obj.get("metadata", {}).get("generation", 0))
        desired = int(obj.get("spec", {}).get("replicas", 1))
        state = obj.get("status") or {}
        ready = int(state.get("readyReplicas", 0))
        updated = int(state.get("updatedReplicas", 0))
        replicas = int(state.get("replicas", 0))
        observed = int(state.get("observedGeneration", 0)) >= generation
        return cls(
            desired=desired,
            replicas=replicas,
            ready=ready,
            available=int(state.get("availableReplicas", ready)),
            updated=updated,
            rolled_out=observed and updated >= desired and replicas <= desired,
        )

    @property
    def summary(self) -> str:
        return f"{self.ready}/{self.desired}"


@dataclass(frozen=True)
class Problem:
    """Something the operator cannot fix itself (a missing Secret...), shown as a reason."""

    reason: str
    message: str


@dataclass(frozen=True)
class Observation:
    interface: Workload | None
    worker: Workload | None
    desired_workers: int
    layer: Condition
    layer_nodes: int
    layer_ready_nodes: int
    layer_url: str
    autoscaling: Condition
    autoscaler: Mapping[str, Any] | None
    queue_depth: int | None
    oldest_age_seconds: float | None
    problems: tuple[Problem, ...] = ()
    # spec.django.migrate: the Migrated condition and status.migration (release.Plan).
    migration: Condition | None = None
    migration_status: Mapping[str, str] | None = None
    # status.interfaceAutoscaler (spec.interface.autoscaling), scaling.interface_status_block.
    interface_autoscaler: Mapping[str, Any] | None = None
    # status.interface.draining / drainingReason (scaling.draining_block), with autoscaling.
    interface_draining: Mapping[str, Any] | None = None


def interface_condition(workload: Workload | None) -> Condition:
    kind = conditions.INTERFACE_AVAILABLE
    if workload is None:
        return conditions.false(kind, "NotCreated", "the interface Deployment does not exist yet")
    if workload.desired == 0:
        return conditions.false(kind, "ScaledToZero", "spec.interface.replicas is 0")
    if workload.available >= workload.desired:
        return conditions.true(
            kind, "MinimumReplicasAvailable", f"{workload.available} interface pods available"
        )
    return conditions.false(
        kind,
        "ReplicasUnavailable",
        f"{workload.available} of {workload.desired} interface pods available",
    )


def worker_condition(workload: Workload | None) -> Condition:
    kind = conditions.WORKERS_AVAILABLE
    if workload is None:
        return conditions.false(kind, "NotCreated", "the worker Deployment does not exist yet")
    if workload.desired == 0:
        return conditions.true(kind, "ScaledToZero", "no workers needed: the queue is empty")
    if workload.available >= workload.desired:
        return conditions.true(
            kind, "MinimumReplicasAvailable", f"{workload.available} worker pods available"
        )
    return conditions.false(
        kind,
        "ReplicasUnavailable",
        f"{workload.available} of {workload.desired} worker pods available",
    )


def _blocking(obs: Observation) -> Condition | None:
    """The Migrated condition when it is what keeps the app from being ready: a failed migration
    (the new release does not roll), or a first one not done yet (no pod runs before it)."""
    migration = obs.migration
    if migration is None or migration.true:
        return None
    if migration.reason == release.FAILED or obs.worker is None:
        return migration
    return None


def _ready(parts: list[Condition], problems: tuple[Problem, ...]) -> Condition:
    if problems:
        first = problems[0]
        return conditions.false(conditions.READY, first.reason, first.message)
    for part in parts:
        if not part.true:
            return conditions.false(conditions.READY, part.reason, f"{part.type}: {part.message}")
    return conditions.true(conditions.READY, "AllComponentsReady", "the app serves traffic")


def _phase(ready: Condition, obs: Observation) -> str:
    if ready.true:
        return READY
    workloads = [w for w in (obs.interface, obs.worker) if w is not None]
    anything_up = any(w.available > 0 for w in workloads)
    if obs.problems:
        return DEGRADED if anything_up else PENDING
    if len(workloads) < 2 or any(not w.rolled_out for w in workloads):
        return PROGRESSING if anything_up else PENDING
    return DEGRADED if anything_up else PENDING


def build(
    app: spec.App,
    obs: Observation,
    previous: Mapping[str, Any] | None,
    *,
    now: str,
) -> dict[str, Any]:
    """The complete status for ``app`` given ``obs`` (``now`` is an RFC 3339 time)."""
    previous = previous or {}
    parts = [interface_condition(obs.interface), worker_condition(obs.worker), obs.layer]
    blocking = _blocking(obs)
    ready = _ready([blocking, *parts] if blocking else parts, obs.problems)
    extra = [obs.migration] if obs.migration is not None else []
    merged = conditions.merge(
        previous.get("conditions") or [],
        [ready, *parts, obs.autoscaling, *extra],
        generation=app.ref.generation,
        now=now,
    )
    iface = obs.interface
    worker = obs.worker
    status: dict[str, Any] = {
        "observedGeneration": app.ref.generation,
        "phase": _phase(ready, obs),
        "conditions": merged,
        "interface": {
            "replicas": iface.desired if iface else app.interface.replicas,
            "readyReplicas": iface.ready if iface else 0,
            "ready": iface.summary if iface else f"0/{app.interface.replicas}",
            **(obs.interface_draining or {}),
        },
        "worker": {
            "replicas": worker.replicas if worker else 0,
            "readyReplicas": worker.ready if worker else 0,
            "desiredReplicas": obs.desired_workers,
            "ready": f"{worker.ready if worker else 0}/{obs.desired_workers}",
            "selector": meta.selector_string(app.ref, meta.WORKER),
        },
        "channelLayer": {
            "mode": app.channel_layer.redis.mode,
            "nodes": obs.layer_nodes,
            "readyNodes": obs.layer_ready_nodes,
            "url": obs.layer_url,
        },
        "endpoint": meta.endpoint(app.ref, app.interface.port),
    }
    if obs.queue_depth is not None:
        status["queueDepth"] = obs.queue_depth
        status["oldestMessageAgeSeconds"] = float(round(obs.oldest_age_seconds or 0.0))
    elif "queueDepth" in previous:
        # Keep the last known depth while the layer cannot be read; the condition says why.
        status["queueDepth"] = previous["queueDepth"]
        status["oldestMessageAgeSeconds"] = previous.get("oldestMessageAgeSeconds", 0.0)
    if obs.autoscaler is not None:
        status["autoscaler"] = dict(obs.autoscaler)
    if obs.interface_autoscaler is not None:
        status["interfaceAutoscaler"] = dict(obs.interface_autoscaler)
    if obs.migration_status is not None:
        status["migration"] = dict(obs.migration_status)
    return status


def invalid(
    previous: Mapping[str, Any] | None, generation: int, message: str, *, now: str
) -> dict[str, Any]:
    """The status of an app whose spec cannot be honoured: the rest of the status is kept."""
    previous = dict(previous or {})
    merged = conditions.merge(
        previous.get("conditions") or [],
        [conditions.false(conditions.READY, INVALID_SPEC, message)],
        generation=generation,
        now=now,
    )
    return {**previous, "observedGeneration": generation, "phase": FAILED, "conditions": merged}


def unattended(previous: Mapping[str, Any], message: str, *, now: str) -> dict[str, Any]:
    """The status of an app no operator keeps any more (the operator stopped): ``Ready`` and the
    phase say ``Unknown``, so a status that is no longer current does not pass for one. The
    next operator to act writes the whole status again."""
    previous = dict(previous)
    generation = int(previous.get("observedGeneration") or 0)
    merged = conditions.merge(
        previous.get("conditions") or [],
        [conditions.unknown(conditions.READY, OPERATOR_STOPPED, message)],
        generation=generation,
        now=now,
    )
    return {**previous, "phase": UNKNOWN, "conditions": merged}


def manifest(obj: Mapping[str, Any], new_status: dict[str, Any]) -> dict[str, Any]:
    """What to apply to the status subresource of ``obj`` to write ``new_status``."""
    metadata = obj["metadata"]
    return {
        "apiVersion": spec.API_VERSION,
        "kind": spec.KIND,
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
        "status": new_status,
    }


def same(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two statuses say the same (so the write can be skipped)."""
    return bool(_normal(a or {}) == _normal(b or {}))


def _normal(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _normal(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
