"""values.yaml comments every key, values.schema.json describes every one and refuses unknown
keys and bad values with a message that names them, and docs/helm.md lists every value."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, ROOT, Helm

VALUES_FILE = CHART / "values.yaml"
SCHEMA_FILE = CHART / "values.schema.json"
DOCS = ROOT / "docs" / "helm.md"
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):")


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


def _defaults() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VALUES_FILE.read_text())
    return loaded


def _our_keys(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the keys the schema describes property by property (our own blocks);
    Kubernetes types passed through (resources, affinity, ...) are one key each."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        yield path
        node = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and "properties" in node:
            yield from _our_keys(value, node, f"{path}.")


def _schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from _schema_nodes(child, f"{path}.{key}" if path else key)
    if isinstance(node.get("items"), dict):
        yield from _schema_nodes(node["items"], f"{path}[]")


def test_values_yaml_starts_with_the_schema_pointer() -> None:
    first = VALUES_FILE.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=values.schema.json"


def test_every_key_of_our_blocks_has_a_comment_above_it() -> None:
    schema = _schema()
    lines = VALUES_FILE.read_text().splitlines()
    stack: list[tuple[int, str]] = []
    uncommented: list[str] = []
    for number, line in enumerate(lines):
        match = _KEY_LINE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parents = [key for _, key in stack]
        stack.append((indent, match["key"]))
        node: dict[str, Any] = schema
        for parent in parents:
            node = node.get("properties", {}).get(parent, {})
        if "properties" not in node:
            continue  # inside a Kubernetes type (resources.requests, ...): not ours to explain
        previous = next((ln for ln in reversed(lines[:number]) if ln.strip()), "")
        if not previous.strip().startswith("#"):
            uncommented.append(".".join([*parents, match["key"]]))
    assert not uncommented, f"keys without a comment above them in values.yaml: {uncommented}"


def test_the_schema_describes_every_value_and_nothing_else() -> None:
    schema, defaults = _schema(), _defaults()
    described = {path for path, _ in _schema_nodes(schema) if path and "[]" not in path}
    in_values = set(_our_keys(defaults, schema))
    assert in_values - described == set(), "values.yaml keys the schema does not describe"
    assert described - in_values - {"global"} == set(), "schema properties missing in values.yaml"
    undescribed = [
        path for path, node in _schema_nodes(schema) if path and not node.get("description")
    ]
    assert not undescribed, f"schema properties without a description: {undescribed}"


def test_every_block_of_ours_refuses_unknown_keys() -> None:
    open_blocks = [
        path or "<root>"
        for path, node in _schema_nodes(_schema())
        if "properties" in node and node.get("additionalProperties") is not False
    ]
    assert not open_blocks, f"blocks that accept unknown keys: {open_blocks}"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("replicaCont=3", "additional properties 'replicaCont' not allowed"),
        ("image.tags=1.0", "additional properties 'tags' not allowed"),
        ("serviceMonitor.intervall=30s", "additional properties 'intervall' not allowed"),
        ("prometheusRule.thresholds.backlog=5", "additional properties 'backlog' not allowed"),
        ("grafanaDashboard.enable=true", "additional properties 'enable' not allowed"),
    ],
)
def test_an_unknown_key_fails_with_a_message_naming_it(
    helm: Helm, setting: str, expected: str
) -> None:
    done = helm.template_text(sets=[setting], check=False)
    assert done.returncode != 0, f"--set {setting} was accepted"
    assert "values don't meet the specifications of the schema" in done.stderr
    assert expected in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("replicaCount=0", "/replicaCount"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("watchNamespace=Not_A_Namespace", "/watchNamespace"),
        ("watchNamespace=team-a\\,\\,team-b", "/watchNamespace"),
        ("operator.logLevel=verbose", "/operator/logLevel"),
        ("prometheusRule.disabled[0]=NoSuchAlert", "/prometheusRule/disabled/0"),
        ("prometheusRule.thresholds.interface5xxRatio=2", "/prometheusRule/thresholds"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_it(
    helm: Helm, setting: str, expected: str
) -> None:
    done = helm.template_text(sets=[setting], check=False)
    assert done.returncode != 0, f"--set {setting} was accepted"
    assert expected in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (
            ["leaderElection.enabled=false"],
            "replicaCount is 2 but leaderElection.enabled is false",
        ),
        (
            ["leaderElection.renewDeadlineSeconds=20"],
            "retryPeriodSeconds (2) < renewDeadlineSeconds (20) < leaseDurationSeconds (15)",
        ),
        (
            ["serviceAccount.create=false"],
            "serviceAccount.name is required when serviceAccount.create is false",
        ),
    ],
)
def test_settings_that_would_break_the_operator_fail_with_what_to_change(
    helm: Helm, sets: list[str], expected: str
) -> None:
    done = helm.template_text(sets=sets, check=False)
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr


def test_docs_list_every_value() -> None:
    docs = DOCS.read_text()
    missing = [path for path in _our_keys(_defaults(), _schema()) if f"`{path}`" not in docs]
    assert not missing, f"values not described in docs/helm.md: {missing}"
