"""Every condition type and reason the docs show in a RealtimeApp's status (``channelworks
status`` output, status YAML) is one the operator can write: a reader who searches for it finds
it in the operator, not an invented ``QueueDepth``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tools.docs.markdown import ROOT

OPERATOR = ROOT / "operator" / "src" / "channelworks_operator"
PAGES = sorted([*(ROOT / "docs").rglob("*.md"), ROOT / "README.md"])
CONDITION_TYPES = {
    "Ready",
    "InterfaceAvailable",
    "WorkersAvailable",
    "ChannelLayerReady",
    "Autoscaling",
    "Migrated",
}
# `channelworks status`:  "    Ready               False   ReplicasUnavailable: ..."
_SUMMARY_LINE = re.compile(r"^\s+([A-Z]\w+)\s+(?:True|False|Unknown)\s+([A-Z]\w+):", re.M)
# "autoscaler wants 3 (Stable: ..."
_AUTOSCALER = re.compile(r"autoscaler wants \d+ \(([A-Z]\w+):")
# status YAML: "{type: Ready, status: "True", reason: AllComponentsReady" and "reason: Stable"
_YAML_TYPE = re.compile(r"\btype: ([A-Z]\w+), status:")
_YAML_REASON = re.compile(r"\breason: ([A-Z]\w+)")


def operator_words() -> set[str]:
    """Every CamelCase string constant of the operator's code: its reasons, condition types and
    phases are among them."""
    words: set[str] = set()
    for path in OPERATOR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and re.fullmatch(r"[A-Z][a-z]+(?:[A-Z][a-z]+)*", value):
                words.add(value)
    return words


def shown(page: Path) -> set[tuple[str, str]]:
    """(what, word) pairs: the condition types and reasons ``page`` shows in status output."""
    text = page.read_text()
    found: set[tuple[str, str]] = set()
    for condition, reason in _SUMMARY_LINE.findall(text):
        if condition in CONDITION_TYPES:
            found |= {("condition", condition), ("reason", reason)}
    found |= {("reason", reason) for reason in _AUTOSCALER.findall(text)}
    found |= {("condition", kind) for kind in _YAML_TYPE.findall(text)}
    found |= {("reason", reason) for reason in _YAML_REASON.findall(text)}
    return found


def test_the_scan_finds_status_output_in_the_docs() -> None:
    everything = set().union(*(shown(page) for page in PAGES))
    assert ("reason", "AllComponentsReady") in everything  # first-app.md's example
    assert ("reason", "ScaledUp") in everything  # cli.md's example


def test_every_status_reason_and_condition_shown_exists_in_the_operator() -> None:
    words = operator_words()
    assert {"AllComponentsReady", "ReplicasUnavailable", "ChildNotOwned"} <= words
    invented = sorted(
        f"{page.relative_to(ROOT)}: {what} {word}"
        for page in PAGES
        for what, word in shown(page)
        if word not in words or (what == "condition" and word not in CONDITION_TYPES)
    )
    assert not invented, f"not written by the operator: {invented}"
