"""Each alert fires on the situation it names, with the labels a receiver routes on, and stays
quiet on a healthy app: ``promtool test rules`` evaluates the chart's rendered rules over
synthetic series, the way Prometheus would.

The annotations are left out of the rules under test (their texts are checked by
``promtool check rules``); these tests are about the expressions, ``for`` and labels.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import Helm, one
from tests.chart.promtool import promtool

APP = 'app="demo.chat"'
# Series of an app's pods carry the target labels the Pod/ServiceMonitor adds.
WORKER_POD = 'namespace="demo", pod="chat-worker-5d8f7c9b6d-x2x9q", job="demo/chat"'
INTERFACE_POD = 'namespace="demo", pod="chat-interface-7c9b6d5d8f-q9x2x", job="demo/chat"'
OPERATOR = 'namespace="channelworks-system", job="cw-channelworks-metrics"'


def _series(series: str, values: str) -> dict[str, str]:
    return {"series": series, "values": values}


def _fires(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": dict(label_set)} for label_set in labels],
    }


def _quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


CASES: dict[str, dict[str, Any]] = {
    "backlog grows while a steady backlog does not alert": {
        "input_series": [
            _series(
                f'channelworks_layer_queue_depth{{{APP}, channel="websocket.receive"}}', "0+10x60"
            ),
            _series(
                'channelworks_layer_queue_depth{app="demo.blog", channel="http.request"}', "500x60"
            ),
        ],
        "alert_rule_test": [
            _quiet("ChannelworksBacklogGrowing", "20m"),  # over 100 at 10m, pending 15m
            _fires(
                "ChannelworksBacklogGrowing",
                "40m",
                {
                    "alertname": "ChannelworksBacklogGrowing",
                    "severity": "warning",
                    "app": "demo.chat",
                },
            ),
        ],
    },
    "oldest message over the SLO": {
        "input_series": [
            _series(
                f'channelworks_layer_oldest_message_age_seconds{{{APP}, channel="x"}}', "45x20"
            ),
            _series(
                'channelworks_layer_oldest_message_age_seconds{app="demo.blog", channel="x"}',
                "2x20",
            ),
        ],
        "alert_rule_test": [
            _quiet("ChannelworksOldestMessageOverSLO", "3m"),
            _fires(
                "ChannelworksOldestMessageOverSLO",
                "10m",
                {
                    "alertname": "ChannelworksOldestMessageOverSLO",
                    "severity": "warning",
                    "app": "demo.chat",
                    "channel": "x",
                },
            ),
        ],
    },
    "workers at their maximum": {
        "input_series": [
            _series(
                f"channelworks_operator_autoscaler_desired_replicas{{{APP}, {OPERATOR}}}", "5x30"
            ),
            _series(f"channelworks_operator_autoscaler_max_replicas{{{APP}, {OPERATOR}}}", "5x30"),
            _series(
                f'channelworks_operator_autoscaler_desired_replicas{{app="demo.blog", {OPERATOR}}}',
                "3x30",
            ),
            _series(
                f'channelworks_operator_autoscaler_max_replicas{{app="demo.blog", {OPERATOR}}}',
                "10x30",
            ),
        ],
        "alert_rule_test": [
            _fires(
                "ChannelworksWorkersAtMax",
                "20m",
                {
                    "alertname": "ChannelworksWorkersAtMax",
                    "severity": "warning",
                    "app": "demo.chat",
                },
            ),
        ],
    },
    "channels full": {
        "input_series": [
            _series(f"channelworks_layer_channel_full_total{{{WORKER_POD}}}", "0+5x20"),
            _series(f"channelworks_layer_channel_full_total{{{INTERFACE_POD}}}", "0+1x20"),
            _series(
                'channelworks_layer_channel_full_total{namespace="demo", '
                'pod="blog-worker-6f7d8c9b5-abcde", job="demo/blog"}',
                "3x20",
            ),
        ],
        "alert_rule_test": [
            _fires(
                "ChannelworksChannelFull",
                "15m",
                {
                    "alertname": "ChannelworksChannelFull",
                    "severity": "warning",
                    "namespace": "demo",
                    "realtimeapp": "chat",
                },
            ),
        ],
    },
    "a Redis node down": {
        "input_series": [
            _series(
                'kube_statefulset_replicas{namespace="demo", statefulset="chat-redis"}', "6x20"
            ),
            _series(
                'kube_statefulset_status_replicas_ready{namespace="demo", '
                'statefulset="chat-redis"}',
                "6 6 5x18",
            ),
            _series(
                'kube_statefulset_replicas{namespace="demo", statefulset="blog-redis"}', "6x20"
            ),
            _series(
                'kube_statefulset_status_replicas_ready{namespace="demo", '
                'statefulset="blog-redis"}',
                "6x20",
            ),
        ],
        "alert_rule_test": [
            _quiet("ChannelworksRedisNodeDown", "4m"),
            _fires(
                "ChannelworksRedisNodeDown",
                "10m",
                {
                    "alertname": "ChannelworksRedisNodeDown",
                    "severity": "critical",
                    "namespace": "demo",
                    "statefulset": "chat-redis",
                },
            ),
        ],
    },
    "interface answers 5xx": {
        "input_series": [
            _series(
                f'channelworks_interface_http_requests_total{{{INTERFACE_POD}, code="200"}}',
                "0+100x30",
            ),
            _series(
                f'channelworks_interface_http_requests_total{{{INTERFACE_POD}, code="503"}}',
                "0+10x30",
            ),
            _series(
                'channelworks_interface_http_requests_total{namespace="demo", '
                'pod="blog-interface-6f7d8c9b5-abcde", code="200"}',
                "0+100x30",
            ),
            _series(
                'channelworks_interface_http_requests_total{namespace="demo", '
                'pod="blog-interface-6f7d8c9b5-abcde", code="500"}',
                "0+1x30",
            ),
        ],
        "alert_rule_test": [
            _fires(
                "ChannelworksInterfaceErrors",
                "20m",
                {
                    "alertname": "ChannelworksInterfaceErrors",
                    "severity": "warning",
                    "namespace": "demo",
                    "realtimeapp": "chat",
                },
            ),
        ],
    },
    "no operator leader": {
        "input_series": [
            _series(f'channelworks_operator_leader{{{OPERATOR}, pod="cw-a"}}', "1 1 0x20"),
            _series(f'channelworks_operator_leader{{{OPERATOR}, pod="cw-b"}}', "0x22"),
        ],
        "alert_rule_test": [
            _quiet("ChannelworksOperatorNoLeader", "3m"),
            _fires(
                "ChannelworksOperatorNoLeader",
                "10m",
                {
                    "alertname": "ChannelworksOperatorNoLeader",
                    "severity": "critical",
                    "namespace": "channelworks-system",
                    "job": "cw-channelworks-metrics",
                },
            ),
        ],
    },
    "reconciles keep failing": {
        "input_series": [
            _series(
                f'channelworks_operator_reconcile_total{{{OPERATOR}, result="error"}}', "0+1x40"
            ),
            _series(
                f'channelworks_operator_reconcile_total{{{OPERATOR}, result="success"}}', "0+10x40"
            ),
        ],
        "alert_rule_test": [
            _fires(
                "ChannelworksReconcileErrors",
                "35m",
                {
                    "alertname": "ChannelworksReconcileErrors",
                    "severity": "warning",
                    "namespace": "channelworks-system",
                    "job": "cw-channelworks-metrics",
                },
            ),
        ],
    },
}


@pytest.fixture(scope="module")
def rules_file(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rendered = helm.template(sets=["prometheusRule.enabled=true"])
    groups: list[dict[str, Any]] = one(rendered, "PrometheusRule")["spec"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = tmp_path_factory.mktemp("rules") / "channelworks.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def test_every_alert_has_a_case(rules_file: Path) -> None:
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    tested = {check["alertname"] for case in CASES.values() for check in case["alert_rule_test"]}
    assert tested == alerts


@pytest.mark.parametrize("case", list(CASES))
def test_alert_fires_on_its_situation_only(rules_file: Path, case: str) -> None:
    binary = promtool()
    if binary is None:
        pytest.skip("promtool is not built: run tests/chart/build-promtool.sh once")
    test_file = rules_file.parent / f"{case.replace(' ', '-')}.test.yaml"
    document = {
        "rule_files": [rules_file.name],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "name": case, **CASES[case]}],
    }
    test_file.write_text(yaml.safe_dump(document, sort_keys=False))
    done = subprocess.run(
        [str(binary), "test", "rules", str(test_file)],
        capture_output=True, text=True, timeout=60, cwd=rules_file.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
