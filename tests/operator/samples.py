"""RealtimeApp manifests shared by the operator's tests."""

from __future__ import annotations

import copy
from typing import Any

from channelworks_operator import builders, spec

UID = "5f1a3c1e-0000-4000-8000-00000000c0de"


def app_body(
    name: str = "chat",
    namespace: str = "demo",
    *,
    spec_fields: dict[str, Any] | None = None,
    generation: int = 1,
) -> dict[str, Any]:
    """A RealtimeApp as the API server returns it (metadata filled in)."""
    body: dict[str, Any] = {
        "apiVersion": spec.API_VERSION,
        "kind": spec.KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": UID,
            "generation": generation,
        },
        "spec": {
            "image": "registry.example/chat-worker:1.4",
            "django": {"settingsModule": "chat.settings"},
        },
    }
    if spec_fields:
        body["spec"] = _merge(body["spec"], spec_fields)
    return body


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def context(**overrides: Any) -> builders.BuildContext:
    values: dict[str, Any] = {
        "interface_image": "channelworks/interface:0.1.0",
        "redis_image": "redis:7.4",
        "operator_namespace": "channelworks-system",
        "operator_pod_labels": (
            ("app.kubernetes.io/name", "channelworks"),
            ("app.kubernetes.io/component", "operator"),
        ),
        "worker_replicas": 1,
        "redis_password": "not-a-real-password",
        "monitor_kinds": frozenset({"PodMonitor", "ServiceMonitor"}),
        "keda_available": True,
    }
    values.update(overrides)
    return builders.BuildContext(**values)


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``Kind/name`` -> manifest."""
    return {f"{m['kind']}/{m['metadata']['name']}": m for m in manifests}
