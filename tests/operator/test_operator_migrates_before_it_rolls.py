"""spec.django.migrate on the real API server, with the real Job controller (kube-controller-
manager) and kwok, which runs a Job's pod to completion once it is scheduled: a new app gets its
migration Job before any Deployment; a new image keeps the workers on the old one until its Job
succeeded; a Job that fails (here: its pod cannot be scheduled and its deadline passes) leaves the
old release running and says so; never two Jobs at once; deleting a Job runs it again."""

from __future__ import annotations

from typing import Any

from channelworks_operator import spec
from channelworks_operator.builders import migrate
from channelworks_operator.kube import Kube
from tests.operator import apps, samples
from tests.operator.conftest import OperatorFactory
from tests.support.control_plane import ControlPlane
from tests.support.eventually import eventually

V1 = "registry.example/chat-worker:1.4"
IMAGES = [f"registry.example/chat-worker:1.{n}" for n in range(5, 8)]
NOWHERE = {"channelworks.dev/test-no-such-node": "true"}  # no node has it: the pod stays Pending
FAIL_WAIT = 90.0  # the Job's 30 s deadline, the Job controller's and the operator's reaction


def job_name(namespace: str, image: str) -> str:
    return migrate.job_name(spec.AppRef("chat", namespace, "", 0), image)


def jobs(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    selector = "app.kubernetes.io/instance=chat,app.kubernetes.io/component=migrate"
    return {j["metadata"]["name"]: j for j in kube.list("batch/v1", "Job", namespace, selector)}


def worker_image(kube: Kube, namespace: str) -> str:
    worker = kube.get("apps/v1", "Deployment", namespace, "chat-worker")
    assert worker is not None
    image: str = worker["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def deployment_generations(kube: Kube, namespace: str) -> dict[str, int]:
    found = kube.list("apps/v1", "Deployment", namespace, "app.kubernetes.io/instance=chat")
    return {d["metadata"]["name"]: d["metadata"]["generation"] for d in found}


def migration(kube: Kube, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = (apps.get(kube, namespace).get("status") or {}).get("migration") or {}
    return found


def test_a_new_app_is_migrated_before_its_pods_are_made(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    app = apps.apply(kube, apps.manifest(namespace, image=V1, **apps.external(redis_url)))
    ready = apps.wait_condition(kube, namespace, "Ready", "True")

    name = job_name(namespace, V1)
    job = jobs(kube, namespace)[name]
    apps.owned_by_the_app(job, app)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == V1
    assert container["command"] == ["python", "-m", "django", "migrate", "--noinput"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DJANGO_SETTINGS_MODULE"] == "chat.settings"
    assert env["CHANNELWORKS_REDIS_URL"] == redis_url
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert job["status"].get("succeeded") == 1

    # No pod of the app before its migration: the Deployments are younger than its end.
    finished = job["status"]["completionTime"]
    for deployment in ("chat-interface", "chat-worker"):
        made = kube.get("apps/v1", "Deployment", namespace, deployment)
        assert made is not None
        assert made["metadata"]["creationTimestamp"] >= finished, deployment
    assert ready["status"]["migration"] == {
        "image": V1,
        "job": name,
        "state": "Succeeded",
        "releasedImage": V1,
    }
    assert apps.condition(ready, "Migrated")["reason"] == "Migrated"


def test_a_new_image_rolls_only_once_migrated_and_a_failed_migration_keeps_the_old_one(
    kube: Kube,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
    control_plane: ControlPlane,
) -> None:
    operator = operators()
    base = apps.manifest(namespace, image=V1, **apps.external(redis_url))
    apps.apply(kube, base)
    apps.wait_condition(kube, namespace, "Ready", "True")
    operator.wait_full_passes()
    generations = deployment_generations(kube, namespace)

    def release(image: str, *, stuck: bool) -> None:
        body = samples._merge(base, {"spec": {"image": image}})
        body["spec"]["django"]["migrate"] = {"timeoutSeconds": 30}
        if stuck:
            body["spec"]["worker"] = {"nodeSelector": NOWHERE}
        apps.apply(kube, body)

    # 1. Its Job cannot run: the workers stay on V1, and the app stays Ready meanwhile.
    failing, waiting, later = IMAGES
    release(failing, stuck=True)
    apps.wait_condition(kube, namespace, "Migrated", "False", reason="Migrating")
    assert set(jobs(kube, namespace)) == {job_name(namespace, V1), job_name(namespace, failing)}
    assert worker_image(kube, namespace) == V1
    assert apps.condition(apps.get(kube, namespace), "Ready")["status"] == "True"

    # 2. Its deadline passes: MigrationFailed, Ready False, Degraded; nothing rolled.
    failed = apps.wait_condition(
        kube, namespace, "Migrated", "False", reason="MigrationFailed", timeout=FAIL_WAIT
    )
    message = apps.condition(failed, "Migrated")["message"]
    assert f"Job {job_name(namespace, failing)} failed (DeadlineExceeded" in message, message
    # kwok keeps no logs and the Job controller deletes a late pod: the message says so.
    assert "Last log lines:\n(" in message, message
    ready = apps.condition(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MigrationFailed")
    assert failed["status"]["phase"] == "Degraded"
    assert failed["status"]["migration"] == {
        "image": failing,
        "job": job_name(namespace, failing),
        "state": "Failed",
        "releasedImage": V1,
    }
    assert worker_image(kube, namespace) == V1
    # Held means untouched: applying the running templates again changed no Deployment.
    assert deployment_generations(kube, namespace) == generations
    warnings = [
        e for e in apps.events(kube, namespace, "MigrationFailed") if e["type"] == "Warning"
    ]
    assert warnings, "no Warning Event for the failed migration"
    wide = control_plane.kubectl("get", "rtapp", "-n", namespace, "-o", "wide").stdout
    assert "Failed" in wide.splitlines()[1].split(), wide

    # 3. Never two at once: a Job runs (stuck again), a newer image waits for it.
    release(waiting, stuck=True)
    apps.wait_condition(kube, namespace, "Migrated", "False", reason="Migrating")
    release(later, stuck=False)
    apps.wait_condition(kube, namespace, "Migrated", "False", reason="WaitingForMigration")
    assert job_name(namespace, later) not in jobs(kube, namespace)
    assert worker_image(kube, namespace) == V1

    # 4. The stuck Job deleted (as a person would): the newest image's Job runs, then it rolls.
    kube.delete("batch/v1", "Job", namespace, job_name(namespace, waiting))
    done = apps.wait_condition(kube, namespace, "Migrated", "True", reason="Migrated")
    assert done["status"]["migration"]["releasedImage"] == later
    eventually(
        lambda: worker_image(kube, namespace) == later,
        timeout=apps.WAIT,
        interval=0.5,
        message="the workers rolled to the migrated image",
    )
    assert job_name(namespace, waiting) not in jobs(kube, namespace)
    apps.wait_condition(kube, namespace, "Ready", "True")
