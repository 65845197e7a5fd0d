"""Why an app's Redis pods are not ready, from the pods, their claims and the cluster's storage
classes (pure: API objects as dicts in, sentences out).

The operator's status counts ready Redis nodes; this says what holds the others back, as a person
would find it with ``kubectl describe``: a claim that cannot bind (no StorageClass of that name,
no default StorageClass, the provisioner's complaint), a pod the scheduler cannot place, a
container that cannot pull its image or keeps crashing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
MAX_REASONS = 5

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class LayerObjects:
    """What ``channelworks status`` reads about an app's Redis: its pods and claims, the
    cluster's StorageClass names (None: not allowed to list them) and the claims' events."""

    pods: Sequence[Obj] = ()
    claims: Sequence[Obj] = ()
    storage_classes: Sequence[Obj] | None = None
    events: Sequence[Obj] = field(default_factory=tuple)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _default_class(classes: Iterable[Obj]) -> str | None:
    for item in classes:
        annotations = (item.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get(DEFAULT_CLASS_ANNOTATION, "")).lower() == "true":
            return _name(item)
    return None


def _latest_event(events: Iterable[Obj], kind: str, name: str) -> str | None:
    matching = [
        event
        for event in events
        if (event.get("involvedObject") or {}).get("kind") == kind
        and (event.get("involvedObject") or {}).get("name") == name
        and event.get("type") == "Warning"
    ]
    if not matching:
        return None
    latest = max(matching, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return f"{latest.get('reason', '?')}: {latest.get('message', '')}".strip()


def claim_reason(claim: Obj, objects: LayerObjects) -> str | None:
    """Why ``claim`` is not bound, or None when it is."""
    phase = (claim.get("status") or {}).get("phase")
    if phase == "Bound":
        return None
    name = _name(claim)
    wanted = (claim.get("spec") or {}).get("storageClassName")
    classes = objects.storage_classes
    if classes is not None:
        names = {_name(item) for item in classes}
        if wanted and wanted not in names:
            known = ", ".join(sorted(names)) or "none"
            return (
                f"volume claim {name} is {phase or 'Pending'}: no StorageClass {wanted!r} in "
                f"the cluster (it has: {known}); set spec.channelLayer.redis.storage."
                "storageClassName to one of them"
            )
        if wanted is None and _default_class(classes) is None:
            return (
                f"volume claim {name} is {phase or 'Pending'}: it names no StorageClass and the "
                "cluster has no default StorageClass; mark one as default or set "
                "spec.channelLayer.redis.storage.storageClassName"
            )
    event = _latest_event(objects.events, "PersistentVolumeClaim", name)
    return f"volume claim {name} is {phase or 'Pending'}" + (f": {event}" if event else "")


def _container_reason(pod: Obj) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for item in statuses:
        waiting = (item.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] != "ContainerCreating":
            message = f": {waiting['message']}" if waiting.get("message") else ""
            return f"container {item.get('name', '?')} {waiting['reason']}{message}"
    return None


def pod_reason(pod: Obj) -> str | None:
    """Why ``pod`` is not ready, or None when it is (or nothing says why)."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if (conditions.get("Ready") or {}).get("status") == "True":
        return None
    name = _name(pod)
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        return f"pod {name} is not scheduled: {scheduled.get('message') or scheduled.get('reason')}"
    container = _container_reason(pod)
    if container:
        return f"pod {name}: {container}"
    if status.get("phase") == "Pending":
        return f"pod {name} is Pending"
    return None


def reasons(objects: LayerObjects) -> list[str]:
    """Why Redis pods are not ready: claims first (they hold the pods back), then pods; at most
    :data:`MAX_REASONS` lines, the last saying how many more there are."""
    found: list[str] = []
    for claim in sorted(objects.claims, key=_name):
        reason = claim_reason(claim, objects)
        if reason:
            found.append(reason)
    unbound = {_name(claim) for claim in objects.claims if claim_reason(claim, objects)}
    for pod in sorted(objects.pods, key=_name):
        volumes = (pod.get("spec") or {}).get("volumes") or []
        claims = {(v.get("persistentVolumeClaim") or {}).get("claimName") for v in volumes}
        if claims & unbound:
            continue  # already said: its claim does not bind
        reason = pod_reason(pod)
        if reason:
            found.append(reason)
    if len(found) > MAX_REASONS:
        rest = len(found) - (MAX_REASONS - 1)
        found = [*found[: MAX_REASONS - 1], f"... and {rest} more"]
    return found
