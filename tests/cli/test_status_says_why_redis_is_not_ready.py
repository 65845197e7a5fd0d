"""When the status counts fewer ready Redis pods than it wants, ``channelworks status`` says what
holds them back, from the real API server: a volume claim naming a StorageClass the cluster does
not have, or naming none in a cluster without a default one, and the pods the scheduler cannot
place because of it."""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest

from tests.cli import cli
from tests.cli.conftest import GROUP, PLURAL, VERSION
from tests.support.control_plane import ControlPlane

NAME = "tickets"
LABELS = {
    "app.kubernetes.io/name": "channelworks",
    "app.kubernetes.io/instance": NAME,
    "app.kubernetes.io/component": "channel-layer",
}


def redis_pod_and_claim(core: Any, namespace: str, ordinal: int, storage_class: str | None) -> None:
    """What the operator's StatefulSet makes for one Redis node: a claim and a pod using it."""
    claim_name = f"data-{NAME}-redis-{ordinal}"
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    if storage_class is not None:
        claim_spec["storageClassName"] = storage_class
    core.create_namespaced_persistent_volume_claim(
        namespace, {"metadata": {"name": claim_name, "labels": LABELS}, "spec": claim_spec}
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": f"{NAME}-redis-{ordinal}", "labels": LABELS},
            "spec": {
                "containers": [{"name": "redis", "image": "redis:7.4"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
            },
        },
    )


def app_with_layer(api: Any, namespace: str, ready: int, nodes: int) -> None:
    objects = kubernetes.client.CustomObjectsApi(api)
    app = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RealtimeApp",
        "metadata": {"name": NAME},
        "spec": {"image": "registry.example/tickets-worker:2.0"},
    }
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, app)
    status = {
        "observedGeneration": 1,
        "phase": "Progressing",
        "channelLayer": {"mode": "cluster", "nodes": nodes, "readyNodes": ready},
    }
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, NAME, {"status": status}
    )


def status_lines(plane: ControlPlane, namespace: str) -> list[str]:
    done = cli.run(
        "status", NAME, "-n", namespace, env=cli.clean_env(KUBECONFIG=str(plane.kubeconfig))
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.usefixtures("realtimeapp_crd")
def test_claims_that_cannot_bind_are_named_with_the_reason(
    control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    classes = kubernetes.client.StorageV1Api(kube_api).list_storage_class().items
    annotation = "storageclass.kubernetes.io/is-default-class"
    metas = [c.metadata for c in classes if c.metadata is not None]
    defaults = [m.name for m in metas if (m.annotations or {}).get(annotation) == "true"]
    assert not defaults, f"this test needs a cluster without a default StorageClass: {defaults}"
    app_with_layer(kube_api, namespace, ready=0, nodes=2)
    redis_pod_and_claim(core, namespace, 0, "fast")
    redis_pod_and_claim(core, namespace, 1, None)

    lines = status_lines(control_plane, namespace)
    assert "  layer       cluster, 0/2 Redis nodes ready" in lines
    why = [line.strip() for line in lines if line.startswith("    why")]
    assert len(why) == 2, lines
    assert why[0].startswith(f"why       volume claim data-{NAME}-redis-0 is Pending: ")
    assert "no StorageClass 'fast' in the cluster" in why[0]
    assert why[1].startswith(f"why       volume claim data-{NAME}-redis-1 is Pending: ")
    assert "names no StorageClass and the cluster has no default StorageClass" in why[1]


@pytest.mark.usefixtures("realtimeapp_crd")
def test_a_ready_layer_gets_no_reasons(
    control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    app_with_layer(kube_api, namespace, ready=2, nodes=2)
    redis_pod_and_claim(kubernetes.client.CoreV1Api(kube_api), namespace, 0, "fast")
    lines = status_lines(control_plane, namespace)
    assert "  layer       cluster, 2/2 Redis nodes ready" in lines
    assert not [line for line in lines if "why" in line]
