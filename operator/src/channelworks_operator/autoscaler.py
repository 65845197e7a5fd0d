"""The built-in autoscaler's decision, as a pure function (no clock, no I/O).

Each poll, ``decide`` turns the queue statistics into a recommendation:

* by depth: ``ceil(depth / targetQueueDepth)`` workers;
* by age: when the oldest waiting message is older than ``targetOldestAgeSeconds``, the workers
  are not keeping up whatever the depth says: grow in proportion to how late they are (at least
  one more, at most double);
* at least one worker while anything waits; clamped to ``[minReplicas, maxReplicas]``.

Scaling out follows the recommendation at once. Scaling in goes only down to the highest
recommendation of the last ``scaleDownStabilizationSeconds`` (as the HPA does), so a short lull
does not remove workers that a new burst needs. ``history`` carries those recommendations from
one call to the next; an empty history (operator just started, or a new leader) counts the
current replicas as recommended now, so a restart never scales in at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from channelworks_operator import spec

MAX_HISTORY = 2048

SCALED_UP = "ScaledUp"
SCALED_DOWN = "ScaledDown"
STABLE = "Stable"
STABILIZING = "Stabilizing"
OUT_OF_RANGE = "OutOfRange"
METRICS_UNAVAILABLE = "MetricsUnavailable"


@dataclass(frozen=True)
class QueueSnapshot:
    """Messages waiting over all of an app's channels, and the age of the oldest one;
    ``channels`` holds the same per channel (name, depth, oldest age) when known."""

    depth: int
    oldest_age_seconds: float
    channels: tuple[tuple[str, int, float], ...] = ()

    def of(self, pool: spec.WorkerPool) -> QueueSnapshot:
        """The part of the queue that ``pool`` takes (all of it for the default pool)."""
        if pool.name is None:
            return self
        mine = tuple(item for item in self.channels if pool.takes(item[0]))
        return QueueSnapshot(
            sum(depth for _, depth, _ in mine), max((age for *_, age in mine), default=0.0), mine
        )


@dataclass(frozen=True)
class InterfaceLoad:
    """What the interface pods last reported: open WebSockets over all of them, and the CPU
    their processes used, summed (percent of one core; None when no pod reported it)."""

    connections: int
    cpu_percent: float | None = None
    pods: int = 0


@dataclass(frozen=True)
class Recommendation:
    """What one poll recommended, and when (seconds, any monotonic clock)."""

    at: float
    replicas: int


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str
    message: str
    recommended: int
    history: tuple[Recommendation, ...]

    def changes(self, current: int) -> bool:
        return self.desired != current


def _clamp(replicas: int, targets: spec.AutoscalingSpec) -> int:
    return max(targets.min_replicas, min(targets.max_replicas, replicas))


def _recommend(
    targets: spec.AutoscalingSpec, current: int, depth: int, oldest_age: float
) -> tuple[int, str]:
    """The raw recommendation and what drove it."""
    by_depth = math.ceil(depth / targets.target_queue_depth)
    why = f"queue depth {depth} at a target of {targets.target_queue_depth} per worker"
    recommended = by_depth
    if depth > 0 and oldest_age > targets.target_oldest_age_seconds:
        lag = oldest_age / targets.target_oldest_age_seconds
        by_age = min(max(current + 1, math.ceil(current * lag)), max(2 * current, 1))
        if by_age > recommended:
            recommended = by_age
            why = (
                f"oldest message waited {oldest_age:.1f}s, over the target of "
                f"{targets.target_oldest_age_seconds}s"
            )
    if depth > 0 and recommended < 1:
        recommended = 1
    return _clamp(recommended, targets), why


def _window(history: tuple[Recommendation, ...], now: float, seconds: int) -> list[Recommendation]:
    return [item for item in history if now - item.at <= seconds]


def decide(
    targets: spec.AutoscalingSpec,
    *,
    current: int,
    depth: int | None,
    oldest_age_seconds: float,
    now: float,
    history: tuple[Recommendation, ...] = (),
) -> Decision:
    """Desired worker replicas for ``current`` workers, the queue, and past recommendations.

    ``depth`` None means the statistics could not be read: keep the workers as they are (only
    brought back within min/max), and record nothing.
    """
    window = targets.scale_down_stabilization_seconds
    if depth is None:
        desired = _clamp(current, targets)
        if desired != current:
            message = f"queue statistics unavailable; {current} -> {desired} to stay within bounds"
            return Decision(desired, OUT_OF_RANGE, message, desired, history)
        message = f"queue statistics unavailable; keeping {current} workers"
        return Decision(current, METRICS_UNAVAILABLE, message, current, history)

    recommended, why = _recommend(targets, current, depth, oldest_age_seconds)
    return _stabilized(
        recommended,
        why,
        current=current,
        bounds=(targets.min_replicas, targets.max_replicas),
        window=window,
        now=now,
        history=history,
        unit="workers",
    )


def _stabilized(
    recommended: int,
    why: str,
    *,
    current: int,
    bounds: tuple[int, int],
    window: int,
    now: float,
    history: tuple[Recommendation, ...],
    unit: str,
) -> Decision:
    """Out at once to ``recommended``; in only to the highest recommendation of the window."""
    low, high = bounds
    kept = _window(history, now, window)
    if not history and window > 0:
        kept.append(Recommendation(now, max(low, min(high, current))))
    kept.append(Recommendation(now, recommended))
    new_history = tuple(kept[-MAX_HISTORY:])

    if recommended > current:
        message = f"{why}: {current} -> {recommended} {unit}"
        return Decision(recommended, SCALED_UP, message, recommended, new_history)
    if recommended == current:
        message = f"{why}: {current} {unit}"
        return Decision(current, STABLE, message, recommended, new_history)
    stabilized = max(low, min(high, max(item.replicas for item in new_history)))
    if stabilized < current:
        reason = SCALED_DOWN if current <= high else OUT_OF_RANGE
        message = f"{why}: {current} -> {stabilized} {unit}"
        return Decision(stabilized, reason, message, recommended, new_history)
    message = (
        f"{why}: {recommended} {unit} would do; keeping {current} until the recommendation "
        f"stays lower for {window}s"
    )
    return Decision(current, STABILIZING, message, recommended, new_history)


def decide_interfaces(
    targets: spec.InterfaceAutoscalingSpec,
    *,
    current: int,
    load: InterfaceLoad | None,
    now: float,
    history: tuple[Recommendation, ...] = (),
) -> Decision:
    """Desired interface replicas: the larger of ``ceil(connections / targetConnectionsPerPod)``
    and ``ceil(CPU summed over the pods / targetCPUPercent)``, within min/max, out at once, in
    after the stabilization window (as ``decide``). ``load`` None means nothing could be read:
    keep the pods as they are (within min/max)."""
    low, high = targets.min_replicas, targets.max_replicas
    if load is None:
        desired = max(low, min(high, current))
        if desired != current:
            message = f"connection count unavailable; {current} -> {desired} to stay within bounds"
            return Decision(desired, OUT_OF_RANGE, message, desired, history)
        message = f"connection count unavailable; keeping {current} interface pods"
        return Decision(current, METRICS_UNAVAILABLE, message, current, history)
    connections = load.connections
    recommended = math.ceil(connections / targets.target_connections)
    why = f"{connections} open connections at a target of {targets.target_connections} per pod"
    if load.cpu_percent is not None:
        by_cpu = math.ceil(round(load.cpu_percent, 1) / targets.target_cpu_percent)
        if by_cpu > recommended:
            recommended = by_cpu
            why = (
                f"interface processes at {load.cpu_percent:.0f}% CPU of one core in all, at a "
                f"target of {targets.target_cpu_percent}% per pod"
            )
    return _stabilized(
        max(low, min(high, recommended)),
        why,
        current=current,
        bounds=(low, high),
        window=targets.scale_down_stabilization_seconds,
        now=now,
        history=history,
        unit="interface pods",
    )
