"""Fixtures of the chart tests: the chart rendered with the real helm (``helm``: kube_fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.helm import Helm, Manifest, values_files


@pytest.fixture(scope="session")
def rendered_default(helm: Helm) -> list[Manifest]:
    return helm.template()


@pytest.fixture(scope="session")
def rendered_by_file(helm: Helm) -> dict[str, list[Manifest]]:
    """Each values file under tests/chart/values/ -> what the chart renders with it."""
    return {path.stem: helm.template([path]) for path in values_files()}


def values_file(stem: str) -> Path:
    matches = [path for path in values_files() if path.stem == stem]
    if not matches:
        raise AssertionError(f"no tests/chart/values/{stem}.yaml")
    return matches[0]
