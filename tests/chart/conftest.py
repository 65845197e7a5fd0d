"""Fixtures of the chart tests: the real helm binary, and the chart rendered with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.helm import Helm, Manifest, values_files
from tests.support.control_plane import ControlPlaneError, helm_binary


@pytest.fixture(scope="session")
def helm() -> Helm:
    """The pinned helm; the chart tests are skipped (and say why) when it is not built."""
    try:
        binary = helm_binary()
    except ControlPlaneError as error:
        pytest.skip(f"no helm binary, so the chart cannot be tested: {error}")
    return Helm(binary)


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
