"""Level-triggered: a spec change rolls out, drift is put back, deleting the app takes every
child with it (garbage collection by the real kube-controller-manager)."""

from __future__ import annotations

from typing import Any

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.control_plane import ControlPlane
from tests.support.eventually import eventually


def test_a_new_image_rolls_out_to_the_workers(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    apps.wait_condition(kube, namespace, "Ready", "True")

    changed = apps.manifest(namespace, **apps.external(redis_url))
    changed["spec"]["image"] = "registry.example/chat-worker:1.5"
    changed["spec"]["interface"] = {"replicas": 3}
    updated = apps.apply(kube, changed)
    generation = updated["metadata"]["generation"]

    def rolled_out() -> None:
        worker = kube.get("apps/v1", "Deployment", namespace, "chat-worker")
        assert worker is not None
        (container,) = worker["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "registry.example/chat-worker:1.5"
        state = worker["status"]
        assert state.get("observedGeneration") == worker["metadata"]["generation"]
        assert state.get("updatedReplicas") == state.get("replicas") == state.get("readyReplicas")
        sets = kube.list("apps/v1", "ReplicaSet", namespace, "app.kubernetes.io/component=worker")
        images = {
            s["spec"]["template"]["spec"]["containers"][0]["image"]: s["spec"]["replicas"]
            for s in sets
        }
        assert images == {
            "registry.example/chat-worker:1.4": 0,
            "registry.example/chat-worker:1.5": 1,
        }

    eventually(rolled_out, timeout=apps.WAIT, interval=0.5)

    def status_caught_up() -> None:
        app = apps.get(kube, namespace)
        assert app["status"]["observedGeneration"] == generation
        assert app["status"]["interface"]["ready"] == "3/3"
        assert apps.condition(app, "Ready")["status"] == "True"

    eventually(status_caught_up, timeout=apps.WAIT, interval=0.5)


def test_drift_is_put_back(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    apps.wait_condition(kube, namespace, "Ready", "True")
    service = kube.get("v1", "Service", namespace, "chat-interface")
    assert service is not None
    old_uid = service["metadata"]["uid"]

    kube.delete("v1", "Service", namespace, "chat-interface")
    # Someone scales the interface by hand and changes its probe port: not what the spec says.
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/chat-interface",
        query={"fieldManager": "kubectl-edit"},
        body={"spec": {"replicas": 5}},
        content_type="application/merge-patch+json",
    )
    kube.delete("policy/v1", "PodDisruptionBudget", namespace, "chat-worker")

    def healed() -> None:
        back = kube.get("v1", "Service", namespace, "chat-interface")
        assert back is not None and back["metadata"]["uid"] != old_uid
        interface = kube.get("apps/v1", "Deployment", namespace, "chat-interface")
        assert interface is not None and interface["spec"]["replicas"] == 2
        assert kube.get("policy/v1", "PodDisruptionBudget", namespace, "chat-worker") is not None

    eventually(healed, timeout=apps.WAIT, interval=0.5)
    eventually(lambda: apps.events(kube, namespace, "DriftCorrected"), timeout=apps.WAIT)


def test_deleting_the_app_deletes_its_children(
    kube: Kube, namespace: str, operators: OperatorFactory
) -> None:
    operators()
    layer = {"redis": {"mode": "standalone", "storage": {"ephemeral": True}}}
    apps.apply(kube, apps.manifest(namespace, channelLayer=layer))

    def made() -> dict[str, Any]:
        found = apps.children(kube, namespace)
        assert len(found) >= 9, sorted(found)
        return found

    eventually(made, timeout=apps.WAIT, interval=0.5)
    kube.delete("channelworks.dev/v1alpha1", "RealtimeApp", namespace, "chat")

    def all_gone() -> None:
        assert apps.children(kube, namespace) == {}
        assert kube.list("v1", "Pod", namespace, "app.kubernetes.io/instance=chat") == []

    eventually(all_gone, timeout=apps.WAIT, interval=0.5)


def test_kubectl_scale_sets_the_workers_when_autoscaling_is_off(
    kube: Kube,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
    control_plane: ControlPlane,
) -> None:
    operators()
    fixed = apps.external(redis_url, worker={"autoscaling": {"enabled": False}, "replicas": 2})
    apps.apply(kube, apps.manifest(namespace, **fixed))
    eventually(lambda: worker_replicas(kube, namespace) == 2, timeout=apps.WAIT, interval=0.5)

    control_plane.kubectl("scale", "rtapp", "chat", "-n", namespace, "--replicas=4")
    eventually(lambda: worker_replicas(kube, namespace) == 4, timeout=apps.WAIT, interval=0.5)
    app = apps.wait_condition(kube, namespace, "Autoscaling", "False", reason="Disabled")
    assert "4 workers" in apps.condition(app, "Autoscaling")["message"]

    def scale_reports_pods() -> None:
        scale = control_plane.kubectl(
            "get",
            "rtapp",
            "chat",
            "-n",
            namespace,
            "--subresource=scale",
            "-o",
            "jsonpath={.spec.replicas}/{.status.replicas}/{.status.selector}",
        ).stdout
        assert scale.startswith("4/4/"), scale
        assert "app.kubernetes.io/component=worker" in scale

    eventually(scale_reports_pods, timeout=apps.WAIT, interval=0.5)


def test_objects_no_longer_wanted_are_removed(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    hpa = apps.external(redis_url, worker={"autoscaling": {"mode": "hpa", "minReplicas": 1}})
    apps.apply(kube, apps.manifest(namespace, **hpa))
    eventually(
        lambda: kube.get("autoscaling/v2", "HorizontalPodAutoscaler", namespace, "chat-worker"),
        timeout=apps.WAIT,
        interval=0.5,
    )
    # No external metrics adapter on the test control plane: the condition says so.
    apps.wait_condition(
        kube, namespace, "Autoscaling", "False", reason="ExternalMetricsUnavailable"
    )

    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    eventually(
        lambda: (
            kube.get("autoscaling/v2", "HorizontalPodAutoscaler", namespace, "chat-worker") is None
        ),
        timeout=apps.WAIT,
        interval=0.5,
    )
    eventually(lambda: apps.events(kube, namespace, "Deleted"), timeout=10)
    apps.wait_condition(kube, namespace, "Autoscaling", "True")


def worker_replicas(kube: Kube, namespace: str) -> int:
    worker = kube.get("apps/v1", "Deployment", namespace, "chat-worker")
    assert worker is not None
    replicas: int = worker["spec"].get("replicas", -1)
    return replicas
