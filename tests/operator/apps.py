"""Creating RealtimeApps on the real API server and looking at what the operator made."""

from __future__ import annotations

from typing import Any

from channelworks_operator import spec
from channelworks_operator.kube import Kube
from tests.operator import samples
from tests.support.eventually import eventually

WAIT = 60.0
CHILD_KINDS = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
)


def manifest(namespace: str, name: str = "chat", **fields: Any) -> dict[str, Any]:
    body = samples.app_body(name, namespace, spec_fields=fields)
    del body["metadata"]["uid"], body["metadata"]["generation"]
    return body


def external(url: str, **fields: Any) -> dict[str, Any]:
    """Spec fields for a channel layer on a real Redis the test runs (so the app gets Ready)."""
    layer = {"channelLayer": {"redis": {"mode": "external", "url": url}}}
    return samples._merge(layer, fields)


def apply(kube: Kube, body: dict[str, Any]) -> dict[str, Any]:
    return kube.apply(body).object


def get(kube: Kube, namespace: str, name: str = "chat") -> dict[str, Any]:
    found = kube.get(spec.API_VERSION, spec.KIND, namespace, name)
    assert found is not None, f"RealtimeApp {namespace}/{name} does not exist"
    return found


def condition(app: dict[str, Any], type_: str) -> dict[str, Any]:
    for item in (app.get("status") or {}).get("conditions") or []:
        if item["type"] == type_:
            found: dict[str, Any] = item
            return found
    return {}


def wait_condition(
    kube: Kube,
    namespace: str,
    type_: str,
    status: str,
    *,
    reason: str | None = None,
    name: str = "chat",
    timeout: float = WAIT,
) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        app = get(kube, namespace, name)
        found = condition(app, type_)
        assert found.get("status") == status, (type_, found, app.get("status"))
        if reason is not None:
            assert found.get("reason") == reason, (type_, found)
        return app

    return eventually(check, timeout=timeout, interval=0.5, message=f"{type_}={status}")


def children(kube: Kube, namespace: str, name: str = "chat") -> dict[str, dict[str, Any]]:
    """``Kind/name`` -> object of everything labelled as this app's."""
    selector = (
        f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=channelworks-operator"
    )
    found: dict[str, dict[str, Any]] = {}
    for api_version, kind in CHILD_KINDS:
        for item in kube.list(api_version, kind, namespace, selector):
            found[f"{kind}/{item['metadata']['name']}"] = item
    return found


def events(kube: Kube, namespace: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in kube.list("v1", "Event", namespace) if e.get("reason") == reason]


def owned_by_the_app(child: dict[str, Any], app: dict[str, Any]) -> None:
    """``child`` is controlled by ``app``, so the garbage collector removes it with the app."""
    assert child["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "channelworks.dev/v1alpha1",
            "kind": "RealtimeApp",
            "name": app["metadata"]["name"],
            "uid": app["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def wait_for(kube: Kube, api_version: str, kind: str, namespace: str, name: str) -> Any:
    """The object, once it exists."""
    return eventually(
        lambda: kube.get(api_version, kind, namespace, name) or False,
        timeout=WAIT,
        interval=0.5,
        message=f"{kind} {namespace}/{name}",
    )


def wait_gone(kube: Kube, api_version: str, kind: str, namespace: str, name: str) -> None:
    eventually(
        lambda: kube.get(api_version, kind, namespace, name) is None,
        timeout=WAIT,
        interval=0.5,
        message=f"{kind} {namespace}/{name} removed",
    )
