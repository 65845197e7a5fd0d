"""What every pod the operator makes has in common: hardening, placement, probes (pure)."""

from __future__ import annotations

from typing import Any

from channelworks_operator import spec
from channelworks_operator.builders import meta

APP_UID = 10001  # interface and worker images run as this user (any non-root uid works)
REDIS_UID = 999  # the uid of the `redis` user in the Redis images
TMP_VOLUME = "tmp"


def pod_security(uid: int) -> dict[str, Any]:
    """Pod-level: non-root, RuntimeDefault seccomp, files written as ``uid``'s group."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """Container-level: read-only root filesystem, no privilege escalation, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def http_probes(path_ready: str = "/readyz", path_live: str = "/healthz") -> dict[str, Any]:
    """Liveness and readiness on the metrics port (9100), as the image contract says."""

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": meta.METRICS_PORT_NAME},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        }

    return {
        "startupProbe": probe(path_live, 2, 30),
        "livenessProbe": probe(path_live, 10, 3),
        "readinessProbe": probe(path_ready, 5, 2),
    }


def tmp_volume() -> dict[str, Any]:
    """A small writable /tmp: the root filesystem is read-only."""
    return {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "256Mi"}}


def tmp_mount() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "mountPath": "/tmp"}


# What a container gets when its spec gives no ``resources``: requests the scheduler and the
# autoscaler can go by, and a memory limit so one leaking pod cannot take its node's memory (no
# CPU limit: throttling hurts latency more than it protects). Documented in the CRD reference.
DEFAULT_RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    "interface": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    "worker": {"requests": {"cpu": "100m", "memory": "192Mi"}, "limits": {"memory": "1Gi"}},
    "redis": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
}


def resources(value: spec.Json, component: str) -> dict[str, Any]:
    """The spec's resources as given, else the component's defaults."""
    if value:
        return dict(value)
    return {kind: dict(amounts) for kind, amounts in DEFAULT_RESOURCES[component].items()}


_MEMORY_UNITS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
}  # fmt: skip


def memory_bytes(quantity: object) -> int | None:
    """A Kubernetes memory quantity in bytes (``256Mi``, ``1G``, ``1e9``); None if unreadable."""
    text = str(quantity).strip()
    for suffix, factor in _MEMORY_UNITS.items():
        if text.endswith(suffix):
            number, multiplier = text[: -len(suffix)], factor
            break
    else:
        number, multiplier = text, 1
    try:
        return int(float(number) * multiplier)
    except ValueError:
        return None


def apply_placement(pod: dict[str, Any], placement: spec.Placement) -> None:
    if placement.node_selector:
        pod["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        pod["tolerations"] = [dict(item) for item in placement.tolerations]
    if placement.affinity:
        pod["affinity"] = dict(placement.affinity)


def spread(app: spec.AppRef, component: str) -> list[dict[str, Any]]:
    """Spread a component's pods over nodes and zones when the scheduler can."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": meta.selector_labels(app, component)},
        }
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


def template_metadata(
    app: spec.AppRef, component: str, placement: spec.Placement
) -> dict[str, Any]:
    template: dict[str, Any] = {"labels": meta.labels(app, component)}
    if placement.annotations:
        template["annotations"] = dict(placement.annotations)
    return template


def image_pull_secrets(app: spec.App) -> list[dict[str, str]]:
    return [{"name": name} for name in app.image_pull_secrets]
