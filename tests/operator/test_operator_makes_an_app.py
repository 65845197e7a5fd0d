"""A valid RealtimeApp on the real API server becomes every child it needs, with the right spec,
labels and owner references, and an honest status; ``kubectl get rtapp`` shows the columns."""

from __future__ import annotations

import base64
from typing import Any

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.control_plane import ControlPlane
from tests.support.eventually import eventually

LABELS = {
    "app.kubernetes.io/name": "channelworks",
    "app.kubernetes.io/instance": "chat",
    "app.kubernetes.io/managed-by": "channelworks-operator",
}


def test_a_valid_app_becomes_ready_with_every_child(
    kube: Kube,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
    control_plane: ControlPlane,
) -> None:
    operators()
    app = apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    ready = apps.wait_condition(kube, namespace, "Ready", "True")

    found = apps.children(kube, namespace)
    assert set(found) == {
        "Deployment/chat-interface",
        "Deployment/chat-worker",
        "Service/chat-interface",
        "PodDisruptionBudget/chat-interface",
        "PodDisruptionBudget/chat-worker",
        "Secret/chat-secret-key",  # the generated DJANGO_SECRET_KEY
    }
    for key, child in found.items():
        assert LABELS.items() <= child["metadata"]["labels"].items(), key
        apps.owned_by_the_app(child, app)
        managers = {m["manager"] for m in child["metadata"]["managedFields"]}
        assert "channelworks-operator" in managers, key

    interface = found["Deployment/chat-interface"]
    assert interface["spec"]["replicas"] == 2
    (container,) = interface["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["channelworks-interface"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CHANNELWORKS_APP"] == f"{namespace}.chat"
    assert env["CHANNELWORKS_REDIS_URL"] == redis_url

    status = ready["status"]
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == ready["metadata"]["generation"]
    assert status["interface"]["ready"] == "2/2"
    assert status["worker"]["ready"] == "1/1"
    assert status["queueDepth"] == 0
    assert status["endpoint"] == f"chat-interface.{namespace}.svc:8000"
    for type_ in ("InterfaceAvailable", "WorkersAvailable", "ChannelLayerReady", "Autoscaling"):
        assert apps.condition(ready, type_)["status"] == "True", type_

    table = control_plane.kubectl("get", "rtapp", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "INTERFACE", "WORKERS", "QUEUE", "AGE"]
    assert table[1].split()[:5] == ["chat", "True", "2/2", "1/1", "0"]
    wide = control_plane.kubectl("get", "rtapp", "-n", namespace, "-o", "wide").stdout
    assert "external" in wide and "Ready" in wide


def test_cluster_mode_makes_the_redis_cluster_objects(
    kube: Kube, namespace: str, operators: OperatorFactory
) -> None:
    operators()
    layer = {"redis": {"shards": 3, "replicasPerShard": 1, "storage": {"size": "2Gi"}}}
    app = apps.apply(kube, apps.manifest(namespace, channelLayer=layer))

    def all_made() -> dict[str, dict[str, Any]]:
        found = apps.children(kube, namespace)
        assert {
            "StatefulSet/chat-redis",
            "Service/chat-redis",
            "ConfigMap/chat-redis",
            "Secret/chat-redis",
            "NetworkPolicy/chat-redis",
            "PodDisruptionBudget/chat-redis",
            "Deployment/chat-worker",
            "Deployment/chat-interface",
        } <= set(found), sorted(found)
        return found

    found = eventually(all_made, timeout=apps.WAIT, interval=0.5)
    for child in found.values():
        apps.owned_by_the_app(child, app)
    redis_set = found["StatefulSet/chat-redis"]["spec"]
    assert redis_set["replicas"] == 6
    assert redis_set["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert redis_set["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "2Gi"
    }
    password = base64.b64decode(found["Secret/chat-redis"]["data"]["password"]).decode()
    assert len(password) >= 32
    # The layer is not up (no Redis runs behind fake pods): the status says so, with a reason.
    app = apps.wait_condition(kube, namespace, "ChannelLayerReady", "False")
    assert apps.condition(app, "ChannelLayerReady")["reason"] in (
        "NodesNotReady",
        "ClusterForming",
        "Unreachable",
    )
    assert apps.condition(app, "Ready")["status"] == "False"
