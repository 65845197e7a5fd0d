"""The PrometheusRule's rules are valid Prometheus rules.

Two checks: ``promtool check rules`` (Prometheus' own parser and checker), run when promtool has
been built from its Go module by ``tests/chart/build-promtool.sh``, and always a structural
check of what Prometheus and Alertmanager users rely on (alert, expr, for, severity, summary,
description; PromQL-shaped expressions).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import promql
from tests.chart.conftest import values_file
from tests.chart.helm import Helm, one
from tests.chart.promtool import promtool

DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
SEVERITIES = {"info", "warning", "critical"}
ALERT_NAME = re.compile(r"^Channelworks[A-Z][A-Za-z0-9]+$")


@pytest.fixture(scope="module", params=["defaults", "monitoring"])
def rule_groups(request: pytest.FixtureRequest, helm: Helm) -> list[dict[str, Any]]:
    """The rule groups as rendered with the default thresholds, and with tuned ones."""
    if request.param == "defaults":
        rendered = helm.template(sets=["prometheusRule.enabled=true"])
    else:
        rendered = helm.template([values_file("monitoring")])
    groups: list[dict[str, Any]] = one(rendered, "PrometheusRule")["spec"]["groups"]
    return groups


def test_rules_pass_promtool_check_rules(rule_groups: list[dict[str, Any]], tmp_path: Path) -> None:
    binary = promtool()
    if binary is None:
        pytest.skip(
            "promtool is not built: run tests/chart/build-promtool.sh once (the structural "
            "check below still runs)"
        )
    rules_file = tmp_path / "channelworks.rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule_groups}, sort_keys=False))
    done = subprocess.run(
        [str(binary), "check", "rules", str(rules_file)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    count = sum(len(group["rules"]) for group in rule_groups)
    assert f"SUCCESS: {count} rules found" in done.stdout, done.stdout


def test_rules_have_the_shape_prometheus_and_alertmanager_need(
    rule_groups: list[dict[str, Any]],
) -> None:
    problems: list[str] = []
    group_names = [group["name"] for group in rule_groups]
    if len(group_names) != len(set(group_names)):
        problems.append(f"group names repeat: {group_names}")
    for group in rule_groups:
        if not group.get("rules"):
            problems.append(f"group {group['name']} has no rules")
        for rule in group.get("rules", []):
            name = rule.get("alert", "<no alert name>")
            extra = set(rule) - {"alert", "expr", "for", "labels", "annotations"}
            if extra:
                problems.append(f"{name}: unexpected keys {sorted(extra)}")
            if not ALERT_NAME.match(name):
                problems.append(f"{name}: alert names read ChannelworksSomething")
            if not DURATION.match(str(rule.get("for", ""))):
                problems.append(f"{name}: 'for' must be a duration, got {rule.get('for')!r}")
            if rule.get("labels", {}).get("severity") not in SEVERITIES:
                problems.append(f"{name}: labels.severity must be one of {sorted(SEVERITIES)}")
            annotations = rule.get("annotations", {})
            for key in ("summary", "description"):
                if not str(annotations.get(key, "")).strip():
                    problems.append(f"{name}: annotations.{key} is empty")
            try:
                if not promql.selectors(str(rule.get("expr", ""))):
                    problems.append(f"{name}: the expression selects no metric")
            except promql.PromQLError as error:
                problems.append(f"{name}: {error}")
            for text in annotations.values():
                if str(text).count("{{") != str(text).count("}}"):
                    problems.append(f"{name}: unbalanced template braces in {text!r}")
    assert not problems, "\n".join(problems)
