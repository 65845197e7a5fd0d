"""An in-process stand-in for the API server behind the operator's ``kube.Api`` adapter, and
a scripted source of queue statistics: the reconcile's logic runs against them in
milliseconds.

It models what the reconcile relies on and nothing more: objects by apiVersion/kind/namespace/
name; server-side apply that creates (201) or replaces the fields it was sent, keeps the
status, bumps ``metadata.generation`` when the spec changes and records our field manager's
``Apply`` entry (with ``f:spec.f:replicas`` when it sent replicas, as ``scaling.holds_replicas``
reads it); the status subresource; label-selector lists (``a=b,c=d``); create (409 when it
exists); delete; discovery of the kinds it serves; Events. What only a real API server proves
(schema validation, SSA merge rules, RBAC, owner-reference garbage collection, watches) stays
in the tests that run one.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

from channelworks_operator import kube as kube_module
from channelworks_operator.autoscaler import InterfaceLoad, QueueSnapshot
from channelworks_operator.exceptions import ApiError, QueueStatsUnavailable
from channelworks_operator.kube import Applied
from channelworks_operator.queue_metrics import LayerTarget

Json = dict[str, Any]
Key = tuple[str, str, str | None, str]

# What a bare cluster serves (the optional APIs are added per test).
CORE_KINDS: dict[str, set[str]] = {
    "v1": {"Secret", "ConfigMap", "Service", "Event", "Pod", "ServiceAccount"},
    "apps/v1": {"Deployment", "StatefulSet", "ReplicaSet"},
    "batch/v1": {"Job"},
    "policy/v1": {"PodDisruptionBudget"},
    "networking.k8s.io/v1": {"NetworkPolicy", "Ingress"},
    "autoscaling/v2": {"HorizontalPodAutoscaler"},
    "channelworks.dev/v1alpha1": {"RealtimeApp"},
}


def _key(manifest: Mapping[str, Any]) -> Key:
    meta = manifest["metadata"]
    return (manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])


def _matches(labels: Mapping[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        name, _, value = term.partition("=")
        if labels.get(name) != value:
            return False
    return True


class FakeKube:
    """``kube.Api`` over a dict of objects; ``writes`` lists every write as (verb, kind/name)."""

    field_manager = kube_module.FIELD_MANAGER

    def __init__(self, *, extra_kinds: Mapping[str, set[str]] | None = None) -> None:
        self.objects: dict[Key, Json] = {}
        self.served: dict[str, set[str]] = {k: set(v) for k, v in CORE_KINDS.items()}
        for version, kinds in (extra_kinds or {}).items():
            self.served.setdefault(version, set()).update(kinds)
        self.events: list[Json] = []
        self.writes: list[tuple[str, str]] = []
        self.logs: dict[tuple[str, str], str] = {}
        self.refuse: dict[str, ApiError] = {}  # "Kind/name" -> the error its apply gets
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)
        self._clock = itertools.count(1)

    # --- the adapter -------------------------------------------------------------------------

    def apply(
        self, manifest: Json, *, subresource: str | None = None, field_manager: str | None = None
    ) -> Applied:
        key = _key(manifest)
        if manifest["kind"] not in (self.served.get(manifest["apiVersion"]) or set()):
            raise ApiError(404, "Not Found", "the server could not find the requested resource")
        what = f"{manifest['kind']}/{key[3]}"
        if subresource is None and what in self.refuse:
            raise self.refuse[what]
        existing = self.objects.get(key)
        self.writes.append((f"apply/{subresource}" if subresource else "apply", what))
        if subresource == "status":
            if existing is None:
                raise ApiError(404, "Not Found", f"{what} not found")
            existing["status"] = copy.deepcopy(manifest["status"])
            self._touch(existing)
            return Applied(copy.deepcopy(existing), created=False)
        manager = field_manager or self.field_manager
        if existing is None:
            obj = self._new(manifest)
            self._own(obj, manifest, manager)
            self.objects[key] = obj
            return Applied(copy.deepcopy(obj), created=True)
        before = copy.deepcopy(existing)
        for field, value in manifest.items():
            if field in ("metadata", "status"):
                continue
            if isinstance(value, dict) and isinstance(existing.get(field), dict):
                existing[field] = {**existing[field], **copy.deepcopy(value)}
            else:
                existing[field] = copy.deepcopy(value)
        for field in ("labels", "annotations", "ownerReferences"):
            if field in manifest["metadata"]:
                existing["metadata"][field] = copy.deepcopy(manifest["metadata"][field])
        if existing.get("spec") != before.get("spec"):
            existing["metadata"]["generation"] = before["metadata"].get("generation", 1) + 1
        if existing != before:
            self._own(existing, manifest, manager)
            self._touch(existing)
        return Applied(copy.deepcopy(existing), created=False)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Json | None:
        found = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Json]:
        return [
            copy.deepcopy(obj)
            for (version, kind_, ns, _), obj in sorted(self.objects.items())
            if (version, kind_) == (api_version, kind)
            and (namespace is None or ns == namespace)
            and _matches(obj["metadata"].get("labels") or {}, label_selector)
        ]

    def create(self, manifest: Json) -> Json:
        key = _key(manifest)
        if key in self.objects:
            raise ApiError(409, "Conflict", f"{manifest['kind']} {key[3]} already exists")
        self.writes.append(("create", f"{manifest['kind']}/{key[3]}"))
        obj = self._new(manifest)
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def replace(self, manifest: Json) -> Json:
        key = _key(manifest)
        if key not in self.objects:
            raise ApiError(404, "Not Found", f"{manifest['kind']} {key[3]} not found")
        self.writes.append(("replace", f"{manifest['kind']}/{key[3]}"))
        obj = copy.deepcopy(manifest)
        self.objects[key] = obj
        self._touch(obj)
        return copy.deepcopy(obj)

    def delete(
        self, api_version: str, kind: str, namespace: str, name: str, uid: str | None = None
    ) -> bool:
        found = self.objects.pop((api_version, kind, namespace, name), None)
        if found is not None:
            self.writes.append(("delete", f"{kind}/{name}"))
        return found is not None

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int) -> str:
        return self.logs.get((namespace, pod), "")

    def served_kinds(self, api_version: str) -> frozenset[str] | None:
        kinds = self.served.get(api_version)
        return None if kinds is None else frozenset(kinds)

    def serves(self, api_version: str, kind: str) -> bool:
        return kind in (self.served.get(api_version) or set())

    def post_event(
        self, involved: Mapping[str, Any], *, type_: str, reason: str, message: str, instance: str
    ) -> None:
        self.events.append({"type": type_, "reason": reason, "message": message})

    # --- what the controllers of a cluster would do ------------------------------------------

    def put(self, manifest: Json) -> Json:
        """An object made by someone else (a user's Secret, a Pod, an Ingress)."""
        obj = self._new(manifest)
        self.objects[_key(obj)] = obj
        return obj

    def find(self, kind: str, name: str, namespace: str = "demo") -> Json:
        for (_, kind_, ns, name_), obj in self.objects.items():
            if (kind_, ns, name_) == (kind, namespace, name):
                return obj
        raise KeyError(f"{kind} {namespace}/{name}")

    def has(self, kind: str, name: str, namespace: str = "demo") -> bool:
        try:
            self.find(kind, name, namespace)
        except KeyError:
            return False
        return True

    def roll_out(self, namespace: str = "demo") -> None:
        """Every Deployment and StatefulSet reports all its replicas ready, as the controllers
        would once their pods run."""
        for (_, kind, ns, _), obj in self.objects.items():
            if kind in ("Deployment", "StatefulSet") and ns == namespace:
                replicas = int(obj["spec"].get("replicas", 1))
                obj["status"] = {
                    "observedGeneration": obj["metadata"].get("generation", 1),
                    "replicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                    "updatedReplicas": replicas,
                }
                self._touch(obj)

    def finish_job(self, name: str, *, succeeded: bool, namespace: str = "demo") -> None:
        job = self.find("Job", name, namespace)
        kind = "Complete" if succeeded else "Failed"
        reason = "Completed" if succeeded else "BackoffLimitExceeded"
        job["status"] = {"conditions": [{"type": kind, "status": "True", "reason": reason}]}

    # --- bookkeeping ---------------------------------------------------------------------------

    def _new(self, manifest: Mapping[str, Any]) -> Json:
        obj = copy.deepcopy(dict(manifest))
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", f"2026-12-06T10:00:{next(self._clock) % 60:02d}Z")
        self._touch(obj)
        return obj

    def _touch(self, obj: Json) -> None:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))

    def _own(self, obj: Json, manifest: Mapping[str, Any], manager: str) -> None:
        fields: Json = {}
        if "replicas" in (manifest.get("spec") or {}):
            fields = {"f:spec": {"f:replicas": {}}}
        entry = {
            "manager": manager,
            "operation": "Apply",
            "time": f"t{next(self._clock)}",
            "fieldsV1": fields,
        }
        managed = [
            item
            for item in obj["metadata"].get("managedFields") or []
            if item.get("manager") != manager
        ]
        obj["metadata"]["managedFields"] = [*managed, entry]


class Clock:
    """The injected monotonic clock: a test moves ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeStats:
    """Queue statistics and connection counts as a test sets them; ``None`` depth: unreadable."""

    def __init__(self, depth: int | None = 0, oldest_age_seconds: float = 0.0) -> None:
        self.depth = depth
        self.oldest_age_seconds = oldest_age_seconds
        self.channels: tuple[tuple[str, int, float], ...] = ()
        self.connections_open: int | None = 0
        self.cpu_percent: float | None = None
        self.pods = 0
        self.reads = 0

    async def read(self, key: str, target: LayerTarget, timeout: float) -> QueueSnapshot:
        self.reads += 1
        if self.depth is None:
            raise QueueStatsUnavailable("failed to read the queue statistics: connection refused")
        return QueueSnapshot(self.depth, self.oldest_age_seconds, self.channels)

    async def connections(self, key: str, target: LayerTarget, timeout: float) -> int:
        return (await self.interface_load(key, target, timeout)).connections

    async def interface_load(self, key: str, target: LayerTarget, timeout: float) -> InterfaceLoad:
        if self.connections_open is None:
            raise QueueStatsUnavailable("failed to read the interface reports: connection refused")
        return InterfaceLoad(self.connections_open, self.cpu_percent, self.pods)

    async def forget(self, key: str) -> None:
        pass

    async def close(self) -> None:
        pass
