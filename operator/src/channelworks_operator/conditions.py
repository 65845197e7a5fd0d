"""Status conditions (pure): the operator's view of an app as type/status/reason/message.

``merge`` keeps ``lastTransitionTime`` of a condition whose status did not flip, so the time says
when the app became (un)ready, not when the operator last looked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

READY = "Ready"
INTERFACE_AVAILABLE = "InterfaceAvailable"
WORKERS_AVAILABLE = "WorkersAvailable"
CHANNEL_LAYER_READY = "ChannelLayerReady"
AUTOSCALING = "Autoscaling"
MIGRATED = "Migrated"
ORDER = (
    READY,
    INTERFACE_AVAILABLE,
    WORKERS_AVAILABLE,
    CHANNEL_LAYER_READY,
    AUTOSCALING,
    MIGRATED,
)

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str

    @property
    def true(self) -> bool:
        return self.status == TRUE


def true(type_: str, reason: str, message: str) -> Condition:
    return Condition(type_, TRUE, reason, message)


def false(type_: str, reason: str, message: str) -> Condition:
    return Condition(type_, FALSE, reason, message)


def unknown(type_: str, reason: str, message: str) -> Condition:
    return Condition(type_, UNKNOWN, reason, message)


def find(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    for item in conditions:
        if item.get("type") == type_:
            return item
    return None


def merge(
    previous: Sequence[Mapping[str, Any]],
    current: Iterable[Condition],
    *,
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """The conditions to write: ``current`` ones, plus previous ones of types not given now.

    A condition keeps its previous ``lastTransitionTime`` unless its status changed.
    """
    given = {item.type: item for item in current}
    merged: list[dict[str, Any]] = []
    types = [t for t in ORDER if t in given or find(previous, t) is not None]
    types += sorted(t for t in given if t not in ORDER)
    for type_ in types:
        old = find(previous, type_)
        new = given.get(type_)
        if new is None:
            if old is not None:
                merged.append(dict(old))
            continue
        since = now
        if old is not None and old.get("status") == new.status and old.get("lastTransitionTime"):
            since = str(old["lastTransitionTime"])
        merged.append(
            {
                "type": new.type,
                "status": new.status,
                "reason": new.reason,
                "message": new.message,
                "observedGeneration": generation,
                "lastTransitionTime": since,
            }
        )
    return merged


def flipped(
    previous: Sequence[Mapping[str, Any]], merged: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Conditions whose status or reason differs from before (worth an Event)."""
    changes = []
    for item in merged:
        old = find(previous, str(item["type"]))
        if (
            old is None
            or old.get("status") != item["status"]
            or old.get("reason") != item["reason"]
        ):
            changes.append(item)
    return changes
