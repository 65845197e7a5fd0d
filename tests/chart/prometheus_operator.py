"""The Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule), for checking the chart's
monitoring objects: against their OpenAPI schemas offline, and installed in the test API server.

They come from the Prometheus Operator's Go module (``example/prometheus-operator-crd/`` in
``github.com/prometheus-operator/prometheus-operator``), fetched by ``go mod download`` into the
Go module cache like the Go modules helm and the control plane are built from; a pinned version,
so the tests are repeatable, and nothing is copied into this repository.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

MODULE = "github.com/prometheus-operator/prometheus-operator"
VERSION = "v0.85.0"
CRD_FILES = {
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}
DOWNLOAD_TIMEOUT = 600.0


class Unavailable(RuntimeError):
    """The CRDs cannot be had on this machine (no Go toolchain)."""


def crd_dir() -> Path:
    go = shutil.which("go")
    if go is None:
        raise Unavailable(
            f"the Go toolchain ('go') is needed to fetch the Prometheus Operator CRDs "
            f"({MODULE}@{VERSION})"
        )
    done = subprocess.run(
        [go, "mod", "download", "-json", f"{MODULE}@{VERSION}"],
        capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT, cwd="/",
    )  # fmt: skip
    info: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    if done.returncode != 0 or "Dir" not in info:
        raise RuntimeError(
            f"go mod download {MODULE}@{VERSION} failed: {info.get('Error') or done.stderr}"
        )
    return Path(info["Dir"]) / "example" / "prometheus-operator-crd"


def crds() -> dict[str, dict[str, Any]]:
    """Kind -> its CustomResourceDefinition document."""
    directory = crd_dir()
    loaded: dict[str, dict[str, Any]] = {}
    for kind, name in CRD_FILES.items():
        document: dict[str, Any] = yaml.safe_load((directory / name).read_text())
        loaded[kind] = document
    return loaded


def strict_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    """The version's openAPIV3Schema as a JSON Schema that refuses unknown fields, as the API
    server's field validation does (``kubectl --validate=strict``)."""
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = _strict(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
            return schema
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _strict(value) for key, value in node.items()}
    if result.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result["type"] = ["integer", "string"]
    if result.get("nullable") and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    if (
        result.get("type") == "object"
        and "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result
