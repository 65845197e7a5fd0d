"""Test 5: the built-in autoscaler on real pods. A flood of chat messages scales
``chat-cluster``'s workers out, idle scales them back in, and what a person checks says why:
``status.autoscaler``, the app's Events and the operator's log."""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.cluster import App, Cluster, Release
from e2e.fixtures_chat import MIN_WORKERS, TARGET_QUEUE_DEPTH, status
from e2e.fixtures_load import Flood
from e2e.fixtures_monitoring import OPERATOR_SELECTOR

pytestmark = pytest.mark.timeout(1200)


def _events(cluster: Cluster, app: App) -> list[dict[str, Any]]:
    listed = cluster.kubectl(
        "get", "events", "-n", app.namespace, "-o", "json",
        "--field-selector", f"involvedObject.kind=RealtimeApp,involvedObject.name={app.name}",
    ).stdout  # fmt: skip
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def test_a_flood_scales_the_workers_out_and_idle_scales_them_back_in(
    cluster: Cluster, cluster_app: App, flood: Flood
) -> None:
    assert flood.most_workers > MIN_WORKERS, flood
    target = TARGET_QUEUE_DEPTH
    # While flooded, the status said how many workers and why: the queue per worker.
    busy = [d for d in flood.decisions if int(d.get("desiredReplicas", 0)) > MIN_WORKERS]
    assert busy, flood.decisions
    assert any(
        f"at a target of {target} per worker" in d["message"] or "oldest message" in d["message"]
        for d in busy
    ), busy
    # Back in: the last decision is the minimum, and when the workers last changed is recorded.
    last = status(cluster, cluster_app)["autoscaler"]
    assert last["desiredReplicas"] == MIN_WORKERS, last
    assert last.get("lastScaleTime"), last
    deployment = cluster.get("deployment", f"{cluster_app.name}-worker", cluster_app.namespace)
    assert deployment["spec"]["replicas"] == MIN_WORKERS
    print(f"\nAUTOSCALING: {flood.sent} messages, up to {flood.most_workers} workers; "
          f"out after {flood.scaled_out - flood.started:.0f}s, back in "
          f"{flood.back_in - flood.stopped:.0f}s after the flood stopped")  # fmt: skip


def test_the_apps_events_say_why_the_workers_scaled(
    cluster: Cluster, cluster_app: App, flood: Flood
) -> None:
    events = _events(cluster, cluster_app)
    by_reason: dict[str, list[str]] = {}
    for event in events:
        by_reason.setdefault(event["reason"], []).append(event["message"])
    ups, downs = by_reason.get("ScaledUp", []), by_reason.get("ScaledDown", [])
    assert ups and downs, by_reason
    assert any("queue depth" in m or "oldest message" in m for m in ups), ups
    assert any(f"-> {MIN_WORKERS} workers" in m for m in downs), downs


def test_the_operator_log_says_why_it_rescaled_the_workers(
    cluster: Cluster, release: Release, cluster_app: App, flood: Flood
) -> None:
    logs = cluster.kubectl(
        "logs", "-n", release.namespace, "-l", OPERATOR_SELECTOR, "--tail=-1",
        "--max-log-requests=10",
    ).stdout.splitlines()  # fmt: skip
    prefix = f"[{cluster_app.namespace}/{cluster_app.name}]"
    mine = [line for line in logs if prefix in line]
    reasons = [line for line in mine if "Scaled" in line]
    assert any("ScaledUp" in line and "queue depth" in line for line in reasons), reasons
    assert any("ScaledDown" in line and f"-> {MIN_WORKERS} workers" in line for line in reasons), (
        reasons
    )
