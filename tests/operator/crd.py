"""The CRD file (the only copy, in the Helm chart) as the tests read it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from channelworks_operator.kube import Kube
from tests.support.eventually import eventually

CRD_PATH = (
    Path(__file__).resolve().parents[2]
    / "charts"
    / "channelworks"
    / "crds"
    / "realtimeapps.channelworks.dev.yaml"
)


ESTABLISH_TIMEOUT = 60.0


def load() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return document


def install(kube: Kube, field_manager: str) -> dict[str, Any]:
    """Apply the CRD as it is (server-side, as ``field_manager``); return once Established."""
    document = load()
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    name = document["metadata"]["name"]
    kube.request(
        "PATCH",
        f"{path}/{name}",
        query={"fieldManager": field_manager, "force": "true"},
        body=document,
        content_type="application/apply-patch+yaml",
    )

    def established() -> bool:
        _, got = kube.request("GET", f"{path}/{name}")
        return any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (got.get("status") or {}).get("conditions") or []
        )

    eventually(established, timeout=ESTABLISH_TIMEOUT, interval=0.2, message="CRD Established")
    return document


def schema() -> dict[str, Any]:
    version = load()["spec"]["versions"][0]
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def apply_defaults(value: Any, node: dict[str, Any]) -> Any:
    """What the API server's structural defaulting does: fill absent fields that have a
    ``default``, inside objects that are present."""
    value = copy.deepcopy(value)
    if isinstance(value, dict) and "properties" in node:
        for key, child in node["properties"].items():
            if key not in value and "default" in child:
                value[key] = copy.deepcopy(child["default"])
            if key in value:
                value[key] = apply_defaults(value[key], child)
    if isinstance(value, list) and "items" in node:
        value = [apply_defaults(item, node["items"]) for item in value]
    return value
