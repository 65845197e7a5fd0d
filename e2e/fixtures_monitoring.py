"""Monitoring on the node as a kube-prometheus-stack user has it, minus the Prometheus Operator's
controller: the Prometheus Operator's CRDs installed, so the chart makes its ServiceMonitor and
PrometheusRule and the operator a PodMonitor per app; a Prometheus server (built from its Go
module) run as a process in the node's namespaces with a scrape config made from those objects
(``e2e/prometheus_config.py``); kube-state-metrics beside it for the ``kube_*`` series.

The binaries: ``$PROMETHEUS`` and ``$KUBE_STATE_METRICS``, else the ones
``tools/kube/build-binaries.sh`` built (the fourth directory of its ``--print-dirs``), else
``prometheus`` and ``kube-state-metrics`` on PATH.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e import prometheus_config
from e2e.cluster import RELEASE, ROOT, App, Cluster, Release, run, tool
from e2e.prometheus_server import (
    PrometheusAPI,
    kube_state_metrics_server,
    prometheus_server,
)
from tests.chart import prometheus_operator

MONITORING_CRD_FILES = (
    "monitoring.coreos.com_servicemonitors.yaml",
    "monitoring.coreos.com_podmonitors.yaml",
    "monitoring.coreos.com_prometheusrules.yaml",
)
BUILD_BINARIES = ROOT / "tools" / "kube" / "build-binaries.sh"
SCRAPE_INTERVAL = "5s"
# The chart's alerts wait 5-15 minutes (`for`) before firing; the test's copy of the rules waits
# this long instead, so that an alert can fire and resolve within the suite's time.
ALERT_PENDING = "10s"
TARGETS_TIMEOUT = 120.0
KSM_JOB = "kube-state-metrics"
# The chart's operator pods (its selectorLabels).
OPERATOR_SELECTOR = (
    f"app.kubernetes.io/name=channelworks,app.kubernetes.io/instance={RELEASE},"
    "app.kubernetes.io/component=operator"
)


def _binary(name: str, variable: str) -> str:
    """``$variable``, else ``name`` from build-binaries.sh's Prometheus directory, else PATH."""
    if os.environ.get(variable):
        return os.environ[variable]
    dirs = run(["bash", str(BUILD_BINARIES), "--print-dirs"], timeout=30).stdout.split()
    built = Path(dirs[3]) / name if len(dirs) > 3 else None
    return str(built) if built is not None and built.is_file() else tool(name, variable)


def install_monitoring_crds(cluster: Cluster) -> None:
    """ServiceMonitor, PodMonitor and PrometheusRule CRDs from the Prometheus Operator's Go
    module (``tests/chart/prometheus_operator.py`` pins the version), Established."""
    directory = prometheus_operator.crd_dir()
    for name in MONITORING_CRD_FILES:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(directory / name))
    names = [f"crd/{name.removeprefix('monitoring.coreos.com_').removesuffix('.yaml')}"
             f".monitoring.coreos.com" for name in MONITORING_CRD_FILES]  # fmt: skip
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


@pytest.fixture(scope="session")
def monitoring_crds(cluster: Cluster) -> None:
    install_monitoring_crds(cluster)


def _objects(cluster: Cluster, kinds: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl("get", kinds, "--all-namespaces", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def monitors(cluster: Cluster, release: Release, app: App) -> list[dict[str, Any]]:
    """The chart's ServiceMonitor for the operator and the app's PodMonitor, as installed."""
    found = _objects(
        cluster, "servicemonitors.monitoring.coreos.com,podmonitors.monitoring.coreos.com"
    )
    chart = [
        item for item in found
        if item["kind"] == "ServiceMonitor" and item["metadata"]["namespace"] == release.namespace
        and item["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == RELEASE
    ]  # fmt: skip
    apps = [
        item for item in found
        if item["kind"] == "PodMonitor" and item["metadata"]["namespace"] == app.namespace
        and item["metadata"]["name"] == app.name
    ]  # fmt: skip
    if not chart:
        pytest.fail(
            f"the chart made no ServiceMonitor in {release.namespace}: install it with "
            "serviceMonitor.enabled=true (the monitoring CRDs installed first)"
        )
    if not apps:
        pytest.fail(f"the operator made no PodMonitor {app.namespace}/{app.name}")
    return chart + apps


def chart_rules(cluster: Cluster, release: Release) -> list[dict[str, Any]]:
    found = [
        item for item in _objects(cluster, "prometheusrules.monitoring.coreos.com")
        if item["metadata"]["namespace"] == release.namespace
        and item["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == RELEASE
    ]  # fmt: skip
    if not found:
        pytest.fail(
            f"the chart made no PrometheusRule in {release.namespace}: install it with "
            "prometheusRule.enabled=true"
        )
    return found


def _wait_for_targets(api: PrometheusAPI, jobs: set[str], timeout: float) -> list[dict[str, Any]]:
    """Every job has a target scraped successfully (the tests look at each target)."""
    deadline = time.monotonic() + timeout
    targets: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        targets = api.targets()
        up = {target["scrapePool"] for target in targets if target["health"] == "up"}
        if jobs <= up:
            return targets
        time.sleep(1)
    summary = [
        (t["scrapePool"], t["labels"].get("pod"), t["health"], t.get("lastError")) for t in targets
    ]
    pytest.fail(
        f"Prometheus targets not all up within {timeout:.0f}s (jobs {sorted(jobs)}): {summary}"
    )


@pytest.fixture(scope="session")
def prometheus(
    cluster: Cluster,
    release: Release,
    cluster_app: App,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrometheusAPI]:
    """Prometheus scraping the operator, ``chat-cluster``'s pods and kube-state-metrics, with
    the chart's alert rules loaded; every target up."""
    directory = tmp_path_factory.mktemp("prometheus")
    kubeconfig = str(cluster.kubeconfig)
    state_metrics = kube_state_metrics_server(
        _binary("kube-state-metrics", "KUBE_STATE_METRICS"),
        kubeconfig,
        cluster_app.namespace,
        directory / "kube-state-metrics.log",
    )
    server = prometheus_server(
        _binary("prometheus", "PROMETHEUS"),
        directory / "prometheus.yml",
        directory / "data",
        directory / "prometheus.log",
    )
    try:
        state_metrics.start()
        rules = directory / "rules.yaml"
        alerting = prometheus_config.rule_file(chart_rules(cluster, release), pending=ALERT_PENDING)
        rules.write_text(yaml.safe_dump(alerting))
        config = prometheus_config.scrape_config(
            monitors(cluster, release, cluster_app),
            kubeconfig,
            static_targets={KSM_JOB: f"127.0.0.1:{state_metrics.port}"},
            interval=SCRAPE_INTERVAL,
            rule_files=[str(rules)],
        )
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        server.start()
        api = PrometheusAPI(server.url)
        jobs = {job["job_name"] for job in config["scrape_configs"]}
        _wait_for_targets(api, jobs, TARGETS_TIMEOUT)
        yield api
    finally:
        server.stop()
        state_metrics.stop()
