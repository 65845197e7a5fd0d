"""A RealtimeApp's status as a few lines a person reads (pure: the object in, text out)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

NO_STATUS = (
    "no status yet: the Channelworks operator has not reported on this app (is it installed "
    "and running? `kubectl get pods -A -l app.kubernetes.io/name=channelworks`)"
)


def age(timestamp: str | None, now: dt.datetime) -> str:
    """``42s``, ``5m``, ``3h``, ``2d`` since an RFC 3339 time, as kubectl prints ages."""
    if not timestamp:
        return "?"
    try:
        then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ready(part: Mapping[str, Any]) -> str:
    """``2/3 ready``: the operator's ready/desired text, else ready/replicas."""
    if part.get("ready"):
        return f"{part['ready']} ready"
    ready, desired = part.get("readyReplicas"), part.get("replicas")
    if ready is None and desired is None:
        return "unknown"
    return f"{ready or 0}/{desired if desired is not None else '?'} ready"


def _workers(status: Mapping[str, Any]) -> str:
    text = _ready(status.get("worker") or {})
    scaler = status.get("autoscaler") or {}
    if scaler.get("desiredReplicas") is not None:
        text += f", autoscaler wants {scaler['desiredReplicas']}"
        if scaler.get("reason"):
            text += f" ({scaler['reason']}"
            text += f": {scaler['message']})" if scaler.get("message") else ")"
    return text


def _queue(status: Mapping[str, Any]) -> str:
    depth = status.get("queueDepth")
    if depth is None:
        return "unknown"
    text = f"{depth} message{'' if depth == 1 else 's'} waiting"
    oldest = status.get("oldestMessageAgeSeconds")
    if depth and oldest is not None:
        text += f", the oldest for {float(oldest):.1f} s"
    return text


def _layer(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    layer = status.get("channelLayer") or {}
    mode = layer.get("mode") or ((spec.get("channelLayer") or {}).get("redis") or {}).get("mode")
    text = mode or "unknown"
    if layer.get("readyNodes") is not None:
        text += f", {layer['readyNodes']}/{layer.get('nodes', '?')} Redis nodes ready"
    return text


def _migration(status: Mapping[str, Any]) -> list[str]:
    """``migration   Failed (Job ..., image ...; released ...)`` from ``status.migration``: the
    operator's migration Job of the newest image, and the image whose migrations last ran."""
    migration = status.get("migration") or {}
    if not migration:
        return []
    text = f"{migration.get('state') or 'unknown'} (Job {migration.get('job', '?')}"
    text += f", image {migration.get('image', '?')}"
    released = migration.get("releasedImage")
    if released and released != migration.get("image"):
        text += f"; released {released}"
    return [f"  migration   {text})"]


def _conditions(conditions: list[Mapping[str, Any]], now: dt.datetime) -> list[str]:
    if not conditions:
        return ["  conditions  none reported"]
    lines = ["  conditions"]
    width = max(len(str(item.get("type", ""))) for item in conditions)
    under_reason = " " * (4 + width + 2 + 8)  # where the reason starts
    for item in conditions:
        # A message of several lines (a failed migration's log) reads as a block under it.
        first, *more = str(item.get("message", "")).splitlines() or [""]
        lines.append(
            f"    {item.get('type', '?'):<{width}}  {item.get('status', '?'):<7} "
            f"{item.get('reason', '')}: {first} "
            f"({age(item.get('lastTransitionTime'), now)} ago)"
        )
        lines += [f"{under_reason}{line}".rstrip() for line in more]
    return lines


def layer_needs_a_reason(app: Mapping[str, Any]) -> bool:
    """Whether the status says Redis pods are missing: then ``channelworks status`` looks for
    why (:mod:`channelworks.deploy.layer_diagnosis`)."""
    layer = (app.get("status") or {}).get("channelLayer") or {}
    ready, nodes = layer.get("readyNodes"), layer.get("nodes")
    return isinstance(ready, int) and isinstance(nodes, int) and ready < nodes


def summarize(app: Mapping[str, Any], now: dt.datetime, layer_reasons: Sequence[str] = ()) -> str:
    """The lines ``channelworks status`` prints for the RealtimeApp object ``app``, with
    ``layer_reasons`` (why Redis pods are not ready) under the layer's line."""
    metadata, spec = app.get("metadata") or {}, app.get("spec") or {}
    status: Mapping[str, Any] = app.get("status") or {}
    title = f"RealtimeApp {metadata.get('namespace', '?')}/{metadata.get('name', '?')}"
    if not status:
        return f"{title}: {NO_STATUS}\n"
    lines = [f"{title}: {status.get('phase') or 'no phase'}"]
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        lines.append(
            f"  (this status is of generation {observed}; the operator has not yet acted on "
            f"generation {generation})"
        )
    lines += [
        f"  image       {spec.get('image', '?')}",
        f"  endpoint    {status.get('endpoint') or 'none yet'}",
        f"  interface   {_ready(status.get('interface') or {})}",
        f"  workers     {_workers(status)}",
        f"  queue       {_queue(status)}",
        f"  layer       {_layer(spec, status)}",
        *(f"    why       {reason}" for reason in layer_reasons),
        *_migration(status),
        *_conditions(list(status.get("conditions") or []), now),
    ]
    return "\n".join(lines) + "\n"
