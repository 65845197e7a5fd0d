"""The hand-written pages name what the code has, so they cannot silently fall behind it:
every environment variable a component reads is in that component's page, every metric the code
exports is in docs/operating.md with its labels, every alert of the chart has a runbook there,
and every relative link between the docs points at a file and heading that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.chart import exported_metrics
from tools.docs.markdown import ROOT

DOCS = ROOT / "docs"
OPERATING = DOCS / "operating.md"
RULES = ROOT / "charts" / "channelworks" / "templates" / "prometheusrule.yaml"
# Each component's settings module, and the page that lists its variables.
SETTINGS_PAGES = {
    "images/interface/src/channelworks_interface/config.py": "docs/interface.md",
    "images/worker/src/channelworks_worker/config.py": "docs/worker.md",
    "operator/src/channelworks_operator/config.py": "docs/operator.md",
    "consumers_sdk/src/channelworks/layers/env.py": "docs/contracts-internal.md",
}
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*[A-Z0-9]$")


def _is_env(node: object) -> bool:
    return isinstance(node, ast.Name) and node.id == "env"


def _names_read(tree: ast.Module) -> set[str]:
    """Names passed to ``env.get(...)`` or to a helper called as ``helper(env, "NAME", ...)``,
    with a ``PREFIX + "NAME"`` reduced to ``NAME``; plus the names of the operator's flags."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        candidates: list[ast.expr] = []
        func = node.func
        env_get = isinstance(func, ast.Attribute) and func.attr == "get"
        if env_get and node.args and _is_env(getattr(func, "value", None)):
            candidates.append(node.args[0])
        elif len(node.args) >= 2 and _is_env(node.args[0]):
            candidates.append(node.args[1])
        for candidate in candidates:
            if isinstance(candidate, ast.BinOp) and isinstance(candidate.op, ast.Add):
                candidate = candidate.right
            value = candidate.value if isinstance(candidate, ast.Constant) else None
            if isinstance(value, str) and _ENV_NAME.match(value):
                names.add(value)
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 3:
            flag, name = node.elts[0], node.elts[1]
            if (
                isinstance(flag, ast.Constant)
                and str(flag.value).startswith("--")
                and isinstance(name, ast.Constant)
            ):
                names.add(str(name.value))
    return names


@pytest.mark.parametrize("source", sorted(SETTINGS_PAGES))
def test_every_environment_variable_is_on_its_components_page(source: str) -> None:
    names = _names_read(ast.parse((ROOT / source).read_text()))
    assert "CHANNELWORKS_APP" in names or "NAMESPACES" in names  # the walk found the settings
    page = (ROOT / SETTINGS_PAGES[source]).read_text()
    missing = sorted(name for name in names if not re.search(rf"\b{name}\b", page))
    assert missing == [], f"{SETTINGS_PAGES[source]} does not mention {missing}"


def test_every_exported_metric_is_on_the_operating_page_with_its_labels() -> None:
    page = OPERATING.read_text()
    definitions = exported_metrics.definitions()
    assert len(definitions) >= 20
    for definition in definitions:
        scraped = (
            definition.samples[0] if definition.kind.startswith("Counter") else definition.family
        )
        rows = [line for line in page.splitlines() if line.startswith(f"| `{scraped}` |")]
        assert rows, f"{scraped} ({definition.where}) is not in the metric tables of operating.md"
        for label in definition.labels:
            assert any(f"`{label}" in row for row in rows), f"{scraped}: label {label} missing"


def test_every_alert_has_a_runbook() -> None:
    alerts = re.findall(r"- alert: (\w+)", RULES.read_text())
    assert len(alerts) >= 8
    headings = re.findall(r"^### (\w+)$", OPERATING.read_text(), re.M)
    assert sorted(set(alerts) - set(headings)) == []


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", page.read_text(), re.M)}


OUR_PAGES = [
    "docs/install.md",
    "docs/first-app.md",
    "docs/operating.md",
    "docs/migration.md",
    "docs/reference/realtimeapp.md",
    "docs/reference/helm-values.md",
]


@pytest.mark.parametrize("page", OUR_PAGES)
def test_links_point_at_pages_and_headings_that_exist(page: str) -> None:
    source = ROOT / page
    broken = []
    text = re.sub(r"```.*?```", "", source.read_text(), flags=re.S)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # an absolute URL
        path, _, anchor = target.partition("#")
        linked = (source.parent / path).resolve() if path else source
        missing_heading = anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        if not linked.exists() or missing_heading:
            broken.append(target)
    assert broken == []
