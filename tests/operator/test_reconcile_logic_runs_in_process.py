"""The reconcile's logic, run in process against a fake Kubernetes adapter (``fake_kube``) and an
injected clock: what a person sees of an app (its children, status, Events, metrics) through
creation, readiness, a missing Secret, a refused child, drift, autoscaling out and in, worker
pools on their own queues, and migrations before a rollout. Milliseconds each; the tests on
the real API server keep what only it proves (schema, server-side apply, RBAC, owner-reference
garbage collection, watches)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from channelworks_operator import config, spec
from channelworks_operator.builders import migrate
from channelworks_operator.exceptions import ApiError, Blocked
from channelworks_operator.metrics import Metrics
from channelworks_operator.reconcile import Reconciler
from tests.operator import samples
from tests.operator.fake_kube import Clock, FakeKube, FakeStats

NAMESPACE = "demo"
URL = "redis://redis.example:6379/0"
SETTINGS = config.load({"CHANNELWORKS_OPERATOR_RETRY_DELAY_SECONDS": "3"})


class Harness:
    """One app, the fake API server, scripted queue statistics and the clock."""

    def __init__(self, *, migrate_enabled: bool = False, **fields: Any) -> None:
        self.kube = FakeKube()
        self.stats = FakeStats()
        self.clock = Clock()
        self.registry = CollectorRegistry()
        self.reconciler = Reconciler(
            SETTINGS, self.kube, self.stats, Metrics(self.registry), clock=self.clock
        )
        layer = {"channelLayer": {"redis": {"mode": "external", "url": URL}}}
        django = {"django": {"migrate": {"enabled": migrate_enabled}}}
        body = samples.app_body(spec_fields=samples._merge(samples._merge(layer, django), fields))
        self.app = self.kube.put(body)

    def run(self, *, full: bool = False) -> None:
        asyncio.run(self.reconciler.reconcile(self.app, full=full))

    def change(self, **fields: Any) -> None:
        self.app["spec"] = samples._merge(self.app["spec"], fields)
        self.app["metadata"]["generation"] += 1

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = self.app.get("status") or {}
        return found

    def condition(self, type_: str) -> dict[str, Any]:
        for item in self.status().get("conditions") or []:
            if item["type"] == type_:
                found: dict[str, Any] = item
                return found
        raise AssertionError(f"no {type_} condition in {self.status()}")

    def reasons(self) -> list[str]:
        return [event["reason"] for event in self.kube.events]

    def replicas(self, name: str) -> int:
        return int(self.kube.find("Deployment", name)["spec"]["replicas"])

    def metric(self, name: str, labels: dict[str, str]) -> float | None:
        return self.registry.get_sample_value(name, labels)


def test_a_new_app_gets_every_child_owned_by_it_then_becomes_ready() -> None:
    h = Harness()
    h.run(full=True)
    for kind, name in [
        ("Deployment", "chat-interface"),
        ("Deployment", "chat-worker"),
        ("Service", "chat-interface"),
        ("Secret", "chat-secret-key"),
    ]:
        child = h.kube.find(kind, name)
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["uid"], owner["controller"]) == (samples.UID, True), (kind, name)
    assert h.condition("Ready")["status"] == "False"
    assert h.status()["endpoint"] == "chat-interface.demo.svc:8000"
    assert h.reasons().count("Created") == 1

    h.kube.roll_out()
    h.run()
    assert h.condition("Ready")["status"] == "True"
    assert h.status()["phase"] == "Ready"
    assert h.status()["observedGeneration"] == 1


def test_an_app_at_rest_is_not_written_again_between_full_passes() -> None:
    h = Harness()
    h.run(full=True)
    h.kube.roll_out()
    h.run()
    writes = len(h.kube.writes)
    h.clock.now += 15
    h.run()
    assert h.kube.writes[writes:] == [], "a run with nothing new wrote something"
    assert h.metric("channelworks_operator_reconcile_total", {"result": "success"}) == 3


def test_a_missing_password_secret_blocks_with_a_reason_until_it_exists() -> None:
    h = Harness(channelLayer={"redis": {"passwordSecretRef": {"name": "redis-auth"}}})
    with pytest.raises(Blocked, match="redis-auth") as blocked:
        h.run(full=True)
    assert blocked.value.delay == 3, "the retry delay of the settings"
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert h.kube.has("Deployment", "chat-worker"), "children are made while it waits"

    h.kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis-auth", "namespace": NAMESPACE},
            "data": {"password": "c2VjcmV0"},
        }
    )
    h.kube.roll_out()
    h.run()  # not a full pass: references are checked again while one lacked
    assert h.condition("Ready")["status"] == "True"


def test_a_missing_pull_secret_is_the_next_reason_and_the_app_heals_once_it_exists() -> None:
    h = Harness(
        imagePullSecrets=[{"name": "registry"}],
        channelLayer={"redis": {"passwordSecretRef": {"name": "redis-auth"}}},
    )
    with pytest.raises(Blocked):
        h.run(full=True)
    assert h.condition("Ready")["reason"] == "SecretNotFound"
    h.kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis-auth", "namespace": NAMESPACE},
            "data": {"password": ""},
        }
    )
    with pytest.raises(Blocked, match="registry"):
        h.run()
    assert h.condition("Ready")["reason"] == "ImagePullSecretNotFound"
    h.kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "registry", "namespace": NAMESPACE},
            "data": {".dockerconfigjson": "e30="},
        }
    )
    h.kube.roll_out()
    h.run()
    assert h.condition("Ready")["status"] == "True"
    assert h.reasons().count("SecretNotFound") == 1, "one Event, not one per retry"


def test_a_child_the_api_server_refuses_is_a_reason_and_the_rest_is_made() -> None:
    h = Harness()
    h.kube.refuse["Deployment/chat-interface"] = ApiError(
        422, "Unprocessable Entity", "spec.template.spec.affinity: Invalid value"
    )
    with pytest.raises(Blocked):
        h.run(full=True)
    ready = h.condition("Ready")
    assert (ready["reason"], "Deployment/chat-interface" in ready["message"]) == (
        "ApplyRejected",
        True,
    )
    assert h.kube.has("Deployment", "chat-worker")
    assert not h.kube.has("Deployment", "chat-interface")


def test_a_child_deleted_by_hand_is_put_back_on_the_next_full_pass() -> None:
    h = Harness()
    h.run(full=True)
    h.kube.roll_out()
    h.run()
    h.kube.delete("v1", "Service", NAMESPACE, "chat-interface")
    h.run()  # between full passes: the memo says it is applied
    assert not h.kube.has("Service", "chat-interface")
    h.run(full=True)  # what a deleted child's watch event asks for
    assert h.kube.has("Service", "chat-interface")
    assert "DriftCorrected" in h.reasons()


def test_an_object_of_a_childs_name_not_made_for_the_app_is_left_alone() -> None:
    h = Harness()
    h.kube.put(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "chat-interface", "namespace": NAMESPACE},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    with pytest.raises(Blocked, match="not made for this app"):
        h.run(full=True)
    assert h.condition("Ready")["reason"] == "ChildNotOwned"
    assert h.kube.find("Service", "chat-interface")["spec"] == {"ports": [{"port": 80}]}


def test_workers_follow_the_queue_out_at_once_and_in_after_the_window() -> None:
    h = Harness(worker={"autoscaling": {"minReplicas": 1, "maxReplicas": 8}})
    h.run(full=True)
    h.kube.roll_out()
    assert h.replicas("chat-worker") == 1

    h.stats.depth = 500  # targetQueueDepth 100: five workers
    h.clock.now += 15
    h.run()
    assert h.replicas("chat-worker") == 5
    assert h.status()["worker"]["desiredReplicas"] == 5
    assert h.status()["queueDepth"] == 500
    assert h.status()["autoscaler"]["desiredReplicas"] == 5
    assert "lastScaleTime" in h.status()["autoscaler"]
    assert h.condition("Autoscaling")["reason"] == "ScaledUp"
    assert h.reasons().count("ScaledUp") == 1
    app = {"app": "demo.chat"}
    assert h.metric("channelworks_operator_autoscaler_desired_replicas", app) == 5
    assert h.metric("channelworks_operator_autoscaler_max_replicas", app) == 8

    h.kube.roll_out()
    h.run()
    assert h.status()["worker"]["ready"] == "5/5"
    h.stats.depth = 0
    h.clock.now += 60  # within scaleDownStabilizationSeconds (120 by default)
    h.run()
    assert h.replicas("chat-worker") == 5
    assert h.condition("Autoscaling")["reason"] == "Stabilizing"
    assert h.status()["queueDepth"] == 0
    h.clock.now += 121
    h.run()
    assert h.replicas("chat-worker") == 1
    assert h.condition("Autoscaling")["reason"] == "ScaledDown"
    assert "ScaledDown" in h.reasons()


def test_an_unreadable_queue_keeps_the_workers_and_says_why() -> None:
    h = Harness()
    h.run(full=True)
    h.kube.roll_out()
    h.stats.depth = None
    h.clock.now += 15
    h.run()
    layer = h.condition("ChannelLayerReady")
    assert layer["status"] == "False" and "connection refused" in layer["message"]
    assert h.replicas("chat-worker") == 1


def test_worker_pools_scale_each_on_their_own_channels_and_replace_the_single_worker() -> None:
    h = Harness()
    h.run(full=True)
    assert h.kube.has("Deployment", "chat-worker")
    h.change(
        workerPools=[
            {"name": "http", "channels": ["http.request"]},
            {"name": "rest"},
        ]
    )
    h.stats.channels = (("http.request", 400, 1.0), ("websocket.receive", 100, 1.0))
    h.stats.depth = 500
    h.clock.now += 15
    h.run()
    assert h.replicas("chat-worker-http") == 4
    assert h.replicas("chat-worker-rest") == 1
    assert not h.kube.has("Deployment", "chat-worker"), "the single worker is pruned"


def test_a_new_image_waits_for_its_migration_job_before_it_rolls() -> None:
    h = Harness(migrate_enabled=True)
    h.run(full=True)
    first = migrate.job_name(spec.parse(h.app).ref, h.app["spec"]["image"])
    assert h.kube.has("Job", first)
    assert not h.kube.has("Deployment", "chat-worker"), "no Deployment before the migrations"
    assert h.condition("Migrated")["reason"] == "Migrating"

    h.kube.finish_job(first, succeeded=True)
    h.run()
    assert h.kube.has("Deployment", "chat-worker")
    assert h.status()["migration"]["releasedImage"] == h.app["spec"]["image"]
    h.kube.roll_out()

    h.change(image="registry.example/chat-worker:1.5")
    h.run()
    second = migrate.job_name(spec.parse(h.app).ref, "registry.example/chat-worker:1.5")
    assert h.kube.has("Job", second)
    worker = h.kube.find("Deployment", "chat-worker")["spec"]["template"]["spec"]
    assert worker["containers"][0]["image"] == "registry.example/chat-worker:1.4", "held"

    h.kube.finish_job(second, succeeded=False)
    h.kube.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{second}-x",
                "namespace": NAMESPACE,
                "labels": {"batch.kubernetes.io/job-name": second},
            },
        }
    )
    h.kube.logs[(NAMESPACE, f"{second}-x")] = "django.db.utils.OperationalError: no such table\n"
    h.run()
    migrated = h.condition("Migrated")
    assert migrated["reason"] == "MigrationFailed" and "no such table" in migrated["message"]
    worker = h.kube.find("Deployment", "chat-worker")["spec"]["template"]["spec"]
    assert worker["containers"][0]["image"] == "registry.example/chat-worker:1.4"


def test_interface_pods_follow_the_open_connections_out_at_once() -> None:
    autoscaling = {
        "enabled": True,
        "minReplicas": 2,
        "maxReplicas": 10,
        "targetConnectionsPerPod": 100,
    }
    h = Harness(interface={"autoscaling": autoscaling})
    h.run(full=True)
    h.kube.roll_out()
    assert h.replicas("chat-interface") == 2
    h.stats.connections_open = 450
    h.clock.now += 15
    h.run()
    assert h.replicas("chat-interface") == 5
    assert "ScaledUp" in h.reasons()


def interface_pod(name: str, *, deleted: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "labels": {
            "app.kubernetes.io/name": "channelworks",
            "app.kubernetes.io/instance": "chat",
            "app.kubernetes.io/component": "interface",
        },
    }
    if deleted:
        metadata["deletionTimestamp"] = "2026-12-06T10:01:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata}


def test_the_status_shows_interface_pods_draining_after_a_scale_in_and_why() -> None:
    autoscaling = {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": 10,
        "targetConnectionsPerPod": 100,
        "scaleDownStabilizationSeconds": 0,
    }
    h = Harness(interface={"autoscaling": autoscaling})
    h.stats.connections_open = 350
    h.run(full=True)
    h.kube.roll_out()
    h.clock.now += 15
    h.run()
    assert h.replicas("chat-interface") == 4
    assert h.status()["interface"]["draining"] == 0
    assert "drainingReason" not in h.status()["interface"]

    # Fewer sockets: in to 2; the two pods the ReplicaSet picked are deleted and still drain.
    h.stats.connections_open = 150
    h.clock.now += 15
    h.run()
    assert h.replicas("chat-interface") == 2
    h.kube.roll_out()
    for name, deleted in (("a", False), ("b", False), ("c", True), ("d", True)):
        h.kube.put(interface_pod(f"chat-interface-{name}", deleted=deleted))
    h.clock.now += 15
    h.run()
    shown = h.status()["interface"]
    assert (shown["ready"], shown["draining"]) == ("2/2", 2)
    reason = shown["drainingReason"]
    assert reason.startswith("2 interface pods draining (chat-interface-c, chat-interface-d)")
    last = h.status()["interfaceAutoscaler"]["lastScaleTime"]
    assert f"scaled in to 2 pods (the interface autoscaler last changed the count at {last})" in (
        reason
    )
    assert "closes its open ones with 1012" in reason

    # Gone: nothing drains any more.
    for name in ("c", "d"):
        h.kube.delete("v1", "Pod", NAMESPACE, f"chat-interface-{name}")
    h.clock.now += 15
    h.run()
    assert h.status()["interface"]["draining"] == 0
    assert "drainingReason" not in h.status()["interface"]
