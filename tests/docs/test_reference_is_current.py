"""The reference pages in docs/reference/ are exactly what their generators make from the CRD,
values.yaml and values.schema.json, so a change to either fails here until the page is
regenerated; and the generators refuse a field they cannot document."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.docs import crd_reference, helm_values_reference, markdown
from tools.docs.markdown import ROOT, ReferenceError

GENERATORS = {
    "docs/reference/realtimeapp.md": "tools.docs.crd_reference",
    "docs/reference/helm-values.md": "tools.docs.helm_values_reference",
}


@pytest.mark.parametrize("page", sorted(GENERATORS))
def test_committed_page_is_what_the_generator_writes(page: str) -> None:
    module = GENERATORS[page]
    result = subprocess.run(
        [sys.executable, "-m", module, "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"{page} is stale: run `.venv/bin/python -m {module}` and commit the result\n"
        f"{result.stderr}"
    )


def test_every_crd_field_and_rule_is_on_the_page() -> None:
    page = (ROOT / "docs" / "reference" / "realtimeapp.md").read_text()
    found, rules = crd_reference.fields(crd_reference.load_crd())
    assert len(found) > 100  # spec and status of the real CRD, not an empty walk
    missing = [item.path for item in found if f"| `{item.path}` |" not in page]
    assert missing == []
    for rule in rules:
        assert markdown.cell(rule.message) in page


def test_every_helm_value_is_on_the_page() -> None:
    page = (ROOT / "docs" / "reference" / "helm-values.md").read_text()
    schema = json.loads(helm_values_reference.SCHEMA.read_text())
    paths = [path for path, _ in helm_values_reference._schema_paths(schema)]
    assert "prometheusRule.thresholds.interface5xxRatio" in paths
    assert [path for path in paths if f"| `{path}` |" not in page] == []


def _crd_with_extra_field() -> dict[str, Any]:
    crd = copy.deepcopy(crd_reference.load_crd())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["worker"]["properties"]["warpSpeed"] = {"type": "integer"}
    return crd


def test_a_new_crd_field_without_a_note_stops_the_generator() -> None:
    with pytest.raises(ReferenceError, match=r"spec\.worker\.warpSpeed has no note"):
        crd_reference.render(_crd_with_extra_field(), crd_reference.load_notes())


def test_a_note_for_a_field_that_is_gone_stops_the_generator() -> None:
    notes = {**crd_reference.load_notes(), "spec.worker.hyperdrive": "gone"}
    with pytest.raises(ReferenceError, match=r"spec\.worker\.hyperdrive, which is no field"):
        crd_reference.render(crd_reference.load_crd(), notes)


def test_a_value_the_schema_does_not_know_stops_the_generator() -> None:
    values = helm_values_reference.VALUES.read_text() + "\n# -- A typo.\nreplicaCont: 3\n"
    with pytest.raises(ReferenceError, match=r"sets replicaCont, which values\.schema\.json"):
        helm_values_reference.render(values_text=values)


def test_a_value_without_a_comment_stops_the_generator() -> None:
    lines = helm_values_reference.VALUES.read_text().splitlines()
    index = lines.index("replicaCount: 2")
    assert lines[index - 2].startswith("# -- Operator pods")  # the two comment lines above it
    values = "\n".join(lines[: index - 2] + lines[index:])
    assert yaml.safe_load(values)["replicaCount"] == 2
    with pytest.raises(ReferenceError, match="replicaCount has no comment"):
        helm_values_reference.render(values_text=values)


def test_check_mode_fails_on_a_stale_page_and_writing_makes_it_current(tmp_path: Path) -> None:
    page = tmp_path / "reference.md"
    page.write_text("old text\n")

    def render() -> str:
        return "new text\n"

    assert markdown.run(render, page, ["--check"]) == 1
    assert page.read_text() == "old text\n"
    assert markdown.run(render, page, []) == 0
    assert markdown.run(render, page, ["--check"]) == 0


def test_a_generator_error_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    def render() -> str:
        raise ReferenceError("spec.x has no note")

    assert markdown.run(render, tmp_path / "page.md", []) == 2
    assert not (tmp_path / "page.md").exists()


def test_values_comments_are_read_per_key_and_nesting() -> None:
    text = (
        "# header, not attached\n\n"
        "# -- The image.\nimage:\n  # -- Its repository.\n  repository: x\n"
        "  tag: ''\n# plain comment\nplain: 1\n"
    )
    assert helm_values_reference.comments(text) == {
        "image": "The image.",
        "image.repository": "Its repository.",
        "plain": "plain comment",
    }
