"""`helm lint --strict` passes and `helm template` renders objects that Kubernetes (the version
of the test control plane) and the Prometheus Operator accept, under every values file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.chart import prometheus_operator
from tests.chart.helm import CHART, Helm, Manifest, documents, kube_version, values_files

VALUES = [None, *values_files()]
IDS = ["defaults", *(path.stem for path in values_files())]
MONITORING_GROUP = "monitoring.coreos.com/"


def _files(values: Path | None) -> list[Path]:
    return [values] if values is not None else []


@pytest.fixture(scope="module")
def monitoring_schemas() -> dict[str, dict[str, Any]]:
    try:
        crds = prometheus_operator.crds()
    except prometheus_operator.Unavailable as error:
        pytest.skip(str(error))
    return {kind: prometheus_operator.strict_schema(crd, "v1") for kind, crd in crds.items()}


@pytest.mark.parametrize("values", VALUES, ids=IDS)
def test_helm_lint_strict_passes(helm: Helm, values: Path | None) -> None:
    done = helm.lint(_files(values))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def _kubernetes_problems(manifest: Manifest, version: str) -> list[str]:
    name = f"{manifest['kind']}/{manifest['metadata']['name']}"
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return [f"{name}: {path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{name}: no Kubernetes {version} schema: {error.message}"]
    return []


@pytest.mark.parametrize("values", VALUES, ids=IDS)
def test_rendered_objects_pass_kubernetes_validate_strict(helm: Helm, values: Path | None) -> None:
    manifests = helm.template(_files(values))
    version = kube_version()
    problems = [
        problem
        for manifest in manifests
        if not manifest["apiVersion"].startswith(MONITORING_GROUP)
        for problem in _kubernetes_problems(manifest, version)
    ]
    assert not problems, "\n".join(problems)
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "ServiceAccount"} <= kinds


@pytest.mark.parametrize("values", VALUES, ids=IDS)
def test_monitoring_objects_match_the_prometheus_operator_crds(
    helm: Helm, values: Path | None, monitoring_schemas: dict[str, dict[str, Any]]
) -> None:
    manifests = helm.template(_files(values))
    problems: list[str] = []
    for manifest in manifests:
        if not manifest["apiVersion"].startswith(MONITORING_GROUP):
            continue
        schema = monitoring_schemas.get(manifest["kind"])
        assert schema is not None, f"no schema for {manifest['kind']} in the test"
        validator = jsonschema.Draft7Validator(schema)
        for error in validator.iter_errors(manifest):
            where = ".".join(str(part) for part in error.absolute_path)
            problems.append(f"{manifest['kind']}: {where}: {error.message}")
    assert not problems, "\n".join(problems)


def test_the_monitoring_values_file_renders_every_monitoring_object(helm: Helm) -> None:
    monitoring = next(path for path in values_files() if path.stem == "monitoring")
    kinds = {m["kind"] for m in helm.template([monitoring])}
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    default_kinds = {m["kind"] for m in helm.template()}
    assert not {"ServiceMonitor", "PrometheusRule", "ConfigMap"} & default_kinds


def test_every_name_fits_in_63_characters_with_a_63_character_full_name(helm: Helm) -> None:
    long_names = next(path for path in values_files() if path.stem == "long-names")
    manifests = helm.template([long_names])
    too_long = [
        f"{m['kind']}/{m['metadata']['name']} ({len(m['metadata']['name'])})"
        for m in manifests
        if len(m["metadata"]["name"]) > 63
    ]
    assert not too_long, too_long
    names = [m["metadata"]["name"] for m in manifests]
    assert all(not name.endswith("-") for name in names), names
    kinds_and_names = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(set(kinds_and_names)) == len(kinds_and_names), "names clash after truncation"


def test_the_crd_is_installed_from_crds_and_never_rendered_again(helm: Helm) -> None:
    done = helm.run(
        "template", "cw", str(CHART), "--include-crds", "--kube-version", kube_version()
    )
    crds = [m for m in documents(done.stdout) if m["kind"] == "CustomResourceDefinition"]
    assert [crd["metadata"]["name"] for crd in crds] == ["realtimeapps.channelworks.dev"]
    rendered = helm.template()
    assert not [m for m in rendered if m["kind"] == "CustomResourceDefinition"]
    copies = [
        path
        for path in CHART.rglob("*")
        if path.is_file()
        and "crds" not in path.relative_to(CHART).parts
        and "CustomResourceDefinition" in path.read_text(errors="replace")
    ]
    assert not copies, f"a copy of the CRD outside crds/: {copies}"
