"""Which Kubernetes Events a reconcile run is worth (pure): what a person should see in
``kubectl describe rtapp`` — children made or put back, scaling, the cluster changing, and the
app becoming (un)ready — each once, when it happens, not on every run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channelworks_operator import conditions, release, scaling

NORMAL = "Normal"
WARNING = "Warning"
NEWS_CONDITIONS = (conditions.READY, conditions.CHANNEL_LAYER_READY, conditions.MIGRATED)
EVENT_MESSAGE_LIMIT = 1024  # what the API server keeps of an Event's message


@dataclass(frozen=True)
class Notice:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class RunFacts:
    """What one run did, as far as Events go."""

    created: Sequence[str] = ()
    drifted: Sequence[str] = ()
    pruned: Sequence[str] = ()
    cluster_actions: str = ""
    problem_reasons: frozenset[str] = frozenset()


def notices(
    previous: Mapping[str, Any],
    new_status: Mapping[str, Any],
    facts: RunFacts,
    decided: scaling.Scaling,
    worker: Mapping[str, Any] | None,
    interfaces: scaling.InterfaceScaling | None = None,
) -> list[Notice]:
    found: list[Notice] = []
    fresh = [name for name in facts.created if name not in facts.drifted]
    if fresh:
        found.append(Notice(NORMAL, "Created", "created " + ", ".join(fresh)))
    if facts.drifted:
        message = ", ".join(facts.drifted) + " (changed or deleted outside the operator)"
        found.append(Notice(NORMAL, "DriftCorrected", "put back " + message))
    if facts.pruned:
        found.append(Notice(NORMAL, "Deleted", "deleted " + ", ".join(facts.pruned)))
    if facts.cluster_actions:
        found.append(Notice(NORMAL, "RedisClusterChanged", facts.cluster_actions))
    decision = decided.decision
    current = scaling.live_replicas(worker)
    if decision is not None and current is not None and decision.changes(current):
        found.append(Notice(NORMAL, decision.reason, decision.message))
    if interfaces is not None and interfaces.decision is not None and interfaces.moved:
        moved = interfaces.decision
        found.append(Notice(NORMAL, moved.reason, f"interfaces: {moved.message}"))
    old = previous.get("conditions") or []
    for item in conditions.flipped(old, new_status.get("conditions") or []):
        if item["type"] not in NEWS_CONDITIONS:
            continue
        bad = item["status"] != conditions.TRUE
        first_look = conditions.find(old, str(item["type"])) is None
        if first_look and bad and item["reason"] not in facts.problem_reasons:
            continue  # a new app not up yet is not news; a missing Secret is
        if item["type"] == conditions.MIGRATED:  # a migration under way is no warning
            bad = item["reason"] == release.FAILED
        kind = WARNING if bad else NORMAL
        message = f"{item['type']}: {item['message']}"
        found.append(
            Notice(kind, str(item["reason"]), release.event_message(message, EVENT_MESSAGE_LIMIT))
        )
    return found
