"""Test 6: Prometheus (built from its Go module, run in the node's namespaces) scrapes every
component the way the chart's ServiceMonitor and the operator's PodMonitor describe; every panel
of the shipped Grafana dashboard has data during the chat flood; the queue depth series follows
the flood; the chart's alert rules load and evaluate cleanly, and one alert fires for real when
the workers are gone and resolves when they are back."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.chat_clients import ChatAddress
from e2e.cluster import CHART, App, Cluster, Release, wait_until
from e2e.fixtures_chat import AUTOSCALING, TARGET_QUEUE_DEPTH, is_ready, pods
from e2e.fixtures_load import Flood, queue_depth_query
from e2e.fixtures_monitoring import OPERATOR_SELECTOR
from e2e.prometheus_server import PrometheusAPI
from tests.dataplane.clients import JsonSocket, join, login, open_chat

pytestmark = pytest.mark.timeout(1200)
DASHBOARD = CHART / "dashboards" / "channelworks.json"
RATE_INTERVAL = "30s"  # Grafana's $__rate_interval for a 5 s scrape interval, with headroom
ALERT = "ChannelworksOldestMessageOverSLO"
ALERT_TIMEOUT = 240.0
WAITING_MESSAGES = 20


def _panels() -> Iterator[tuple[str, list[str]]]:
    document = json.loads(DASHBOARD.read_text())
    for panel in document["panels"]:
        expressions = [target["expr"] for target in panel.get("targets", []) if target.get("expr")]
        if expressions:
            yield panel["title"], expressions


def _instantiate(expression: str, app: App) -> str:
    """A panel query as Grafana sends it with this namespace and app chosen."""
    return (
        expression.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$namespace", app.namespace)
        .replace("$app", app.name)
    )


def _scraped(prometheus: PrometheusAPI) -> dict[str, dict[str, str]]:
    """Scrape pool -> pod -> health of its target."""
    by_pool: dict[str, dict[str, str]] = {}
    for target in prometheus.targets():
        pod = target["labels"].get("pod", target["scrapeUrl"])
        by_pool.setdefault(target["scrapePool"], {})[pod] = target["health"]
    return by_pool


def test_every_component_is_scraped_as_the_monitors_describe(
    cluster: Cluster, release: Release, cluster_app: App, prometheus: PrometheusAPI
) -> None:
    operator = {name.removeprefix("pod/") for name in
                cluster.names("pods", release.namespace, OPERATOR_SELECTOR)}  # fmt: skip
    app_pool = f"podMonitor/{cluster_app.namespace}/{cluster_app.name}/0"
    members = {
        pod["metadata"]["name"]
        for component in ("interface", "worker")
        for pod in pods(cluster, cluster_app, component)
        if is_ready(pod)
    }

    def all_up() -> tuple[bool, dict[str, dict[str, str]]]:
        by_pool = _scraped(prometheus)
        operator_up = {
            pod for pool, found in by_pool.items() if pool.startswith("serviceMonitor/")
            for pod, health in found.items() if health == "up"
        }  # fmt: skip
        app_up = {pod for pod, health in by_pool.get(app_pool, {}).items() if health == "up"}
        return operator_up == operator and members <= app_up, by_pool

    by_pool = wait_until("every operator, interface and worker pod scraped", all_up, 60)
    redis = {pod["metadata"]["name"] for pod in pods(cluster, cluster_app, "channel-layer")}
    assert not redis & set(by_pool.get(app_pool, {})), "Redis pods have no metrics port"
    assert by_pool.get("kube-state-metrics"), by_pool
    # Each component's series carry the labels the dashboard and the alerts select on.
    built = prometheus.query(
        f'channelworks_build_info{{namespace=~"{cluster_app.namespace}|{release.namespace}"}}'
    )
    components = {series["metric"]["component"] for series in built}
    assert components >= {"operator", "interface", "worker"}, built
    for series in built:
        labels = series["metric"]
        assert labels.get("namespace") and labels.get("pod") and labels.get("job"), labels


def test_every_dashboard_panel_has_data_during_the_chat_flood(
    cluster_app: App, prometheus: PrometheusAPI, flood: Flood
) -> None:
    empty_panels, empty_queries = [], []
    for title, expressions in _panels():
        with_data = 0
        for expression in expressions:
            query = _instantiate(expression, cluster_app)
            found = prometheus.query_range(query, flood.started, flood.back_in)
            if any(
                math.isfinite(float(value)) for series in found for _, value in series["values"]
            ):
                with_data += 1
            else:
                empty_queries.append(f"{title}: {query}")
        if not with_data:
            empty_panels.append(title)
    print("\nDASHBOARD: queries without a number during the flood (nothing of that kind happened):")
    for line in empty_queries:
        print(f"  {line}")
    assert not empty_panels, f"panels without data: {empty_panels}; empty: {empty_queries}"


def test_the_queue_depth_series_rises_and_falls_with_the_flood(
    cluster_app: App, prometheus: PrometheusAPI, flood: Flood
) -> None:
    query = queue_depth_query(cluster_app)
    # Every second: each scrape's value (5 s apart) is among the points.
    found = prometheus.query_range(query, flood.started, flood.back_in, step=1)
    assert len(found) == 1, found
    values = [(float(at), float(value)) for at, value in found[0]["values"]]
    peak_at, peak = max(values, key=lambda point: point[1])
    # An idle app's queue has no channel yet, so no series: nothing waits.
    baseline = prometheus.query(query, at=flood.started)
    before = float(baseline[0]["value"][1]) if baseline else 0.0
    after = [value for at, value in values if at > peak_at]
    print(f"\nQUEUE DEPTH: before the flood {before:.0f}, peak {peak:.0f}, end {values[-1][1]:.0f}")
    assert peak >= TARGET_QUEUE_DEPTH > before, values
    assert after and after[-1] == 0, values


def test_the_alert_rules_are_loaded_and_evaluate_without_errors(
    prometheus: PrometheusAPI, flood: Flood
) -> None:
    groups = prometheus.rule_groups()
    names = {group["name"] for group in groups}
    assert {"channelworks.apps", "channelworks.operator"} <= names, names
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 8, rules
    for rule in rules:
        assert rule["health"] == "ok", rule
        assert not rule.get("lastError"), rule
        assert not rule["lastEvaluation"].startswith("0001-"), rule  # evaluated at least once


def _alert_states(prometheus: PrometheusAPI, app: App) -> list[str]:
    app_label = f"{app.namespace}.{app.name}"
    return [
        alert["state"]
        for alert in prometheus.alerts()
        if alert["labels"].get("alertname") == ALERT and alert["labels"].get("app") == app_label
    ]


def _alert(prometheus: PrometheusAPI, app: App, state: str | None) -> tuple[bool, list[str]]:
    """Whether the alert is in ``state`` for the app (None: not there at all)."""
    states = _alert_states(prometheus, app)
    return (state in states) if state else not states, states


def _patch_workers(cluster: Cluster, app: App, worker: dict[str, Any]) -> None:
    cluster.kubectl("patch", "rtapp", app.name, "-n", app.namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"worker": worker}}))  # fmt: skip


async def _open_in_room(base: str, ws: str) -> JsonSocket:
    socket, _ = await open_chat(ws, await login(base, "alice"))
    await join(socket, "lobby")
    return socket


def test_an_alert_fires_while_no_worker_takes_the_queue_and_resolves_when_they_are_back(
    cluster: Cluster, cluster_app: App, prometheus: PrometheusAPI, flood: Flood
) -> None:
    """Workers scaled to 0 (autoscaling off) while a user keeps chatting: messages wait, the
    oldest grows past the SLO and ChannelworksOldestMessageOverSLO fires; autoscaling back on,
    a worker takes the waiting messages (every one reaches the room) and the alert resolves."""
    try:
        asyncio.run(_nobody_works_for_a_while(cluster, cluster_app, prometheus))
    finally:
        _patch_workers(cluster, cluster_app, {"replicas": None, "autoscaling": dict(AUTOSCALING)})


async def _nobody_works_for_a_while(cluster: Cluster, app: App, prometheus: PrometheusAPI) -> None:
    # The event loop runs throughout (kubectl and the waits in threads): the socket keeps
    # answering the interface's pings while nothing else happens on it.
    chat = ChatAddress.of(app)
    socket = await _open_in_room(chat.base, chat.ws)
    try:
        await asyncio.to_thread(
            _patch_workers, cluster, app, {"replicas": 0, "autoscaling": {"enabled": False}}
        )
        await asyncio.to_thread(
            wait_until, "the workers gone", lambda: (not pods(cluster, app, "worker"), None), 120
        )
        texts = [f"while nobody works {time.time_ns()}-{n}" for n in range(WAITING_MESSAGES)]
        for text in texts:
            await socket.send({"command": "send", "room": "lobby", "message": text})
        await asyncio.to_thread(
            wait_until, f"{ALERT} firing", lambda: _alert(prometheus, app, "firing"), ALERT_TIMEOUT
        )
        await asyncio.to_thread(
            _patch_workers, cluster, app, {"replicas": None, "autoscaling": dict(AUTOSCALING)}
        )
        pending = set(texts)
        async with asyncio.timeout(ALERT_TIMEOUT):
            while pending:  # every waiting line reaches the room once a worker is back
                frame = await socket.recv(timeout=ALERT_TIMEOUT)
                pending.discard(str(frame.get("message", "")))
        await asyncio.to_thread(
            wait_until, f"{ALERT} resolved", lambda: _alert(prometheus, app, None), ALERT_TIMEOUT
        )
    finally:
        await socket.close()
