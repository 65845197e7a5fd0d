"""Applying an app's children and removing the ones no longer wanted (blocking; in a thread).

Every apply is a server-side apply with the operator's field manager: the API server merges it,
takes back fields someone else changed (drift), recreates a deleted object, and writes nothing
when nothing changed (the resourceVersion stays). Between full passes a child whose manifest is
unchanged since the last apply is not sent at all (``Memo``).

Before a child is first applied (nothing remembered of it), an object of its name that this app
does not control is left alone, unless the app opts in to adopting it (``spec.adoptExisting``):
an apply would take it over, and the app's deletion would delete it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from channelworks_operator import builders, spec
from channelworks_operator.builders import autoscaling, meta
from channelworks_operator.exceptions import ApiError
from channelworks_operator.kube import Api

logger = logging.getLogger(__name__)

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
SYNCED = "synced"  # applied, but nothing remembered to compare with (first pass after a start)
SKIPPED = "skipped"
UNSERVED = "unserved"  # its kind went away (a CRD removed since discovery last looked)


@dataclass
class Memo:
    """Per app: the hash of each child's last applied manifest and its state after the apply."""

    applied: dict[str, tuple[str, str]] = field(default_factory=dict)
    pruned_against: frozenset[builders.ChildRef] | None = None


@dataclass
class Report:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    not_owned: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    def keys(self, outcome: str) -> list[str]:
        return [key for key, value in self.outcomes.items() if value == outcome]


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def _fingerprint(obj: Mapping[str, Any], manager: str) -> str:
    """What changes only when one of our applies changed the object: the time of our field
    manager's entry (the API server leaves it alone on a no-op apply; others' writes, such as an
    HPA's or a controller's status, do not touch it). Falls back to the resourceVersion."""
    metadata = obj.get("metadata", {})
    for entry in metadata.get("managedFields") or []:
        ours = entry.get("manager") == manager and entry.get("operation") == "Apply"
        if ours and not entry.get("subresource"):
            return f"t{entry.get('time', '')}"
    return f"r{metadata.get('resourceVersion', '')}"


def _refused(error: ApiError) -> bool:
    """The API server refuses this manifest as it is (a person must change the spec or RBAC):
    invalid, forbidden, or a field its schema does not know (apply answers that with a 500)."""
    if error.status in (400, 403, 422):
        return True
    return error.status == 500 and "failed to create typed patch object" in error.message


def _short(key: str) -> str:
    kind, _, name = key.split("/", 2)
    return f"{kind}/{name}"


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    owners = obj.get("metadata", {}).get("ownerReferences") or []
    return any(o.get("uid") == uid and o.get("controller") for o in owners)


def _foreign(kube: Api, manifest: Mapping[str, Any], owner_uid: str) -> bool:
    """An object of the manifest's name exists and is not controlled by the app."""
    meta_ = manifest["metadata"]
    existing = kube.get(manifest["apiVersion"], manifest["kind"], meta_["namespace"], meta_["name"])
    return existing is not None and not controlled_by(existing, owner_uid)


def apply_all(
    kube: Api,
    manifests: Iterable[dict[str, Any]],
    memo: Memo,
    *,
    full: bool,
    app: spec.App,
) -> Report:
    """Apply each manifest (or skip it, see the module doc); refusals are collected in
    ``rejected`` and objects the app does not own in ``not_owned`` (they need a person), other
    errors raise."""
    report = Report()
    for manifest in manifests:
        key = meta.object_key(manifest)
        digest = manifest_hash(manifest)
        known = memo.applied.get(key)
        if not full and known is not None and known[0] == digest:
            report.outcomes[key] = SKIPPED
            continue
        if known is None and not app.adopt_existing and _foreign(kube, manifest, app.ref.uid):
            logger.warning(
                "[%s] %s exists and is not this app's: left alone", app.ref.prefix, _short(key)
            )
            report.not_owned.append(_short(key))
            report.outcomes[key] = "not-owned"
            continue
        try:
            applied = kube.apply(manifest)
        except ApiError as error:
            if error.not_found:  # apply makes what is missing: it is the kind that is gone
                logger.info("[%s] %s is no longer served: not applied", app.ref.prefix, _short(key))
                report.outcomes[key] = UNSERVED
                continue
            if _refused(error):
                logger.warning("[%s] %s", app.ref.prefix, error)
                report.rejected.append((_short(key), str(error)))
                report.outcomes[key] = "rejected"
                continue
            raise
        fingerprint = _fingerprint(applied.object, kube.field_manager)
        if applied.created:
            outcome = CREATED
        elif known is None:
            outcome = SYNCED
        elif known[1] != fingerprint:
            outcome = UPDATED
        else:
            outcome = UNCHANGED
        if outcome in (CREATED, UPDATED):
            logger.info("[%s] %s %s", app.ref.prefix, outcome, _short(key))
        memo.applied[key] = (digest, fingerprint)
        report.objects[key] = applied.object
        report.outcomes[key] = outcome
    return report


def drifted(
    report: Report, memo_before: Mapping[str, tuple[str, str]], manifests: Iterable[dict[str, Any]]
) -> list[str]:
    """Children put back although their manifest had not changed: someone edited or deleted
    them."""
    hashes = {meta.object_key(m): manifest_hash(m) for m in manifests}
    out = []
    for key, outcome in report.outcomes.items():
        before = memo_before.get(key)
        if before is None or before[0] != hashes.get(key):
            continue
        if outcome in (CREATED, UPDATED):
            out.append(_short(key))
    return out


def prune(
    kube: Api,
    app: spec.AppRef,
    wanted: Iterable[dict[str, Any]],
    memo: Memo,
    *,
    served: Mapping[tuple[str, str], bool],
) -> list[str]:
    """Delete children that the spec no longer asks for (only ones this app controls).

    Runs when the set of wanted children differs from the one last pruned against.
    """
    wanted_refs = frozenset(builders.ref_of(m) for m in wanted)
    if memo.pruned_against == wanted_refs:
        return []
    removed: list[str] = []
    # Worker pools come and go with spec.workerPools: every worker Deployment is a candidate, and
    # the ScaledObject and HPA of the same name (a pool's, in modes keda and hpa).
    pools = kube.list(
        "apps/v1", "Deployment", app.namespace, meta.selector_string(app, meta.WORKER)
    )
    candidates = builders.possible(app)
    names = [item["metadata"]["name"] for item in pools]
    for version, kind in (  # a pool's ScaledObject/HPA before the Deployment it scales
        (autoscaling.KEDA_API_VERSION, "ScaledObject"),
        (autoscaling.HPA_API_VERSION, "HorizontalPodAutoscaler"),
        ("apps/v1", "Deployment"),
    ):
        for name in names:
            if builders.ChildRef(version, kind, name) not in candidates:
                candidates.append(builders.ChildRef(version, kind, name))
    for ref in candidates:
        if ref in wanted_refs or not served.get((ref.api_version, ref.kind), True):
            continue
        existing = kube.get(ref.api_version, ref.kind, app.namespace, ref.name)
        if existing is None:
            continue
        if not controlled_by(existing, app.uid):
            continue  # not ours: leave it alone
        uid = existing["metadata"].get("uid")
        if kube.delete(ref.api_version, ref.kind, app.namespace, ref.name, uid=uid):
            logger.info("[%s] deleted %s/%s (no longer wanted)", app.prefix, ref.kind, ref.name)
            removed.append(f"{ref.kind}/{ref.name}")
        memo.applied.pop(f"{ref.kind}/{app.namespace}/{ref.name}", None)
    memo.pruned_against = wanted_refs
    return removed
