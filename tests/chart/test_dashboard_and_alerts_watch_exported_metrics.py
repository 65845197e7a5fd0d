"""The Grafana dashboard and the alert rules shipped with the chart: they hold the panels and
alerts the design asks for, and every metric they query is one a Channelworks component really
exports (or, for the few kube-state-metrics series, is named as such)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chart import exported_metrics, promql
from tests.chart.conftest import values_file
from tests.chart.helm import CHART, Helm, Manifest, one

DASHBOARD_FILE = CHART / "dashboards" / "channelworks.json"

# Series no Channelworks component exports, from exporters a Prometheus stack runs anyway. Only
# these may appear besides channelworks_* (which must all come from our code).
EXTERNAL_METRICS = {
    "kube_deployment_status_replicas_ready": "kube-state-metrics",
    "kube_statefulset_replicas": "kube-state-metrics",
    "kube_statefulset_status_replicas_ready": "kube-state-metrics",
}
# Labels Prometheus adds to every series scraped through a Pod/ServiceMonitor.
TARGET_LABELS = {"namespace", "pod", "job", "instance", "service", "container", "endpoint"}

REQUIRED_PANELS = {
    "Queue depth per channel",
    "Oldest message age per channel",
    "Workers: desired vs ready",
    "WebSocket connections",
    "Messages per second",
    "Handler latency p50 / p99",
    "Errors per second",
    "ChannelFull rate",
    "Redis nodes up",
}
REQUIRED_ALERTS = {
    "ChannelworksBacklogGrowing",
    "ChannelworksOldestMessageOverSLO",
    "ChannelworksWorkersAtMax",
    "ChannelworksChannelFull",
    "ChannelworksRedisNodeDown",
    "ChannelworksInterfaceErrors",
}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> dict[str, str]:
    """'panel title [refId]' -> PromQL expression."""
    return {
        f"panel {panel['title']!r} [{target['refId']}]": target["expr"]
        for panel in panels(dashboard())
        for target in panel.get("targets", [])
    }


@pytest.fixture(scope="module")
def rules(helm: Helm) -> list[dict[str, Any]]:
    """The alert rules the chart renders with every alert on."""
    rendered = helm.template(sets=["prometheusRule.enabled=true"])
    spec = one(rendered, "PrometheusRule")["spec"]
    return [rule for group in spec["groups"] for rule in group["rules"]]


def rule_queries(rules: list[dict[str, Any]]) -> dict[str, str]:
    return {f"alert {rule['alert']}": rule["expr"] for rule in rules}


@pytest.fixture(scope="module")
def catalogue() -> exported_metrics.Catalogue:
    return exported_metrics.catalogue()


def _problems(queries: dict[str, str], catalogue: exported_metrics.Catalogue) -> Iterator[str]:
    for where, expr in queries.items():
        for selector in promql.selectors(expr):
            metric = selector.metric
            if metric in EXTERNAL_METRICS:
                continue
            if not metric.startswith("channelworks_"):
                yield f"{where}: {metric} is neither ours nor a known external metric"
                continue
            wired = catalogue.wired(metric)
            if not wired:
                yield f"{where}: no component defines {metric}"
                continue
            if not any(places for _, places in wired):
                defined = ", ".join(d.where for d, _ in wired)
                yield (
                    f"{where}: {metric} is defined ({defined}) but no running component builds "
                    "it, so nothing exports it"
                )
                continue
            known = catalogue.labels(metric) | TARGET_LABELS
            if metric.endswith("_bucket"):
                known.add("le")
            unknown = {m.label for m in selector.matchers} - known
            if unknown:
                yield f"{where}: {metric} has no label(s) {sorted(unknown)}"


def test_every_metric_on_the_dashboard_is_exported_by_the_code(
    catalogue: exported_metrics.Catalogue,
) -> None:
    problems = sorted(set(_problems(dashboard_queries(), catalogue)))
    assert not problems, "\n".join(problems)


def test_every_metric_in_the_alert_rules_is_exported_by_the_code(
    rules: list[dict[str, Any]], catalogue: exported_metrics.Catalogue
) -> None:
    problems = sorted(set(_problems(rule_queries(rules), catalogue)))
    assert not problems, "\n".join(problems)


def test_external_metrics_are_not_ours() -> None:
    assert not [name for name in EXTERNAL_METRICS if name.startswith("channelworks_")]


def test_the_dashboard_has_the_panels_operators_watch() -> None:
    board = dashboard()
    titles = {panel["title"] for panel in panels(board)}
    assert titles >= REQUIRED_PANELS, REQUIRED_PANELS - titles
    graphs = [panel for panel in panels(board) if panel["type"] != "row"]
    assert all(panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
               for panel in graphs)  # fmt: skip
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in graphs:
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert {"datasource", "namespace", "app"} <= variables
    assert board["uid"] == "channelworks-overview"


def test_every_dashboard_query_is_promql_shaped() -> None:
    for where, expr in dashboard_queries().items():
        try:
            promql.check_balanced(expr)
        except promql.PromQLError as error:
            pytest.fail(f"{where}: {error}")


def test_the_dashboard_configmap_carries_the_file_for_the_grafana_sidecar(helm: Helm) -> None:
    rendered = helm.template([values_file("monitoring")])
    configmap = one(rendered, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Channelworks"}
    assert json.loads(configmap["data"]["channelworks.json"]) == dashboard()


def test_the_rules_hold_the_alerts_operators_need(rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in rules]
    assert set(names) >= REQUIRED_ALERTS, REQUIRED_ALERTS - set(names)
    assert len(names) == len(set(names))


def _rules_of(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    spec = one(manifests, "PrometheusRule")["spec"]
    return {rule["alert"]: rule for group in spec["groups"] for rule in group["rules"]}


def test_thresholds_labels_and_disabled_alerts_follow_the_values(helm: Helm) -> None:
    tuned = _rules_of(helm.template([values_file("monitoring")]))
    assert "> 10" in tuned["ChannelworksOldestMessageOverSLO"]["expr"]
    assert ">= 500" in tuned["ChannelworksBacklogGrowing"]["expr"]
    assert "> 0.01" in tuned["ChannelworksInterfaceErrors"]["expr"]
    assert all(rule["labels"]["team"] == "realtime" for rule in tuned.values())
    fewer = _rules_of(
        helm.template(
            sets=[
                "prometheusRule.enabled=true",
                "prometheusRule.disabled={ChannelworksInterfaceErrors,ChannelworksWorkersAtMax}",
            ]
        )
    )
    assert set(tuned) - set(fewer) == {"ChannelworksInterfaceErrors", "ChannelworksWorkersAtMax"}
