"""Migrations as part of a rollout (spec.django.migrate), on real pods: the operator's Job made
the chat recipe's tables and demo users (there is no other migration step in the recipe); and a
second app on the same database, ``chat-release``: created, it is migrated before any of its pods
runs; a release whose migration fails (a settings module that does not exist) is not rolled, the
old pods keep serving, and the app's condition shows the Job's last log lines; fixed and its Job
deleted, the migration runs again and the release rolls.

The releases differ in their image reference: the chat image qualified (``docker.io/...``) is the
same image to the node's runtime and a new ``spec.image`` to the operator, so no second image has
to be built.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.chat_clients import ChatAddress
from e2e.cluster import App, Cluster, Images, wait_until
from tests.dataplane.clients import join, login, open_chat

NAME = "chat-release"
MIGRATION_TIMEOUT = 300.0
READY_TIMEOUT = 300.0
MISSING_SETTINGS = "k8s_settings_missing"


def qualified(image: str) -> str:
    """Another reference to the same image: qualified with docker.io/, or without it."""
    prefix = "docker.io/"
    return image.removeprefix(prefix) if image.startswith(prefix) else prefix + image


def release_manifest(chat: dict[str, Any], image: str, settings: str) -> dict[str, Any]:
    """The suite's chat manifest as ``chat-release``: one interface pod, one worker, small."""
    manifest = copy.deepcopy(chat)
    manifest["metadata"] = {"name": NAME, "labels": dict(chat["metadata"].get("labels") or {})}
    spec = manifest["spec"]
    spec["image"] = image
    spec["django"]["settingsModule"] = settings
    spec["interface"]["replicas"] = 1
    spec["worker"]["autoscaling"] = {"enabled": False}
    spec["worker"]["replicas"] = 1
    return manifest


def status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster.get("rtapp", name, namespace).get("status") or {}
    return found


def condition(found: dict[str, Any], type_: str) -> dict[str, Any]:
    for item in found.get("conditions") or []:
        if item["type"] == type_:
            return dict(item)
    return {}


def pods(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    """uid -> image of the app's interface and worker pods that are not being deleted."""
    selector = (
        f"app.kubernetes.io/instance={name},app.kubernetes.io/component in (interface,worker)"
    )
    return {
        pod["metadata"]["uid"]: pod["spec"]["containers"][0]["image"]
        for pod in cluster.items("pods", namespace, selector)
        if pod["metadata"].get("deletionTimestamp") is None
    }


async def _log_in_and_chat(address: ChatAddress) -> None:
    """alice logs in over HTTP and hears herself in the lobby over a WebSocket."""
    session = await login(address.base, "alice")
    socket, hello = await open_chat(address.ws, session)
    try:
        assert hello["hello"] == "alice"
        await join(socket, "lobby")
        text = f"still serving {time.time_ns()}"
        await socket.send({"command": "send", "room": "lobby", "message": text})
        said, _ = await socket.recv_until(lambda frame: frame.get("message") == text, 30)
        assert said["user"] == "alice"
    finally:
        await socket.close()


def serves(app: App) -> None:
    asyncio.run(_log_in_and_chat(ChatAddress.of(app)))


def test_the_operator_migrated_the_chat_recipe(cluster: Cluster, app: App) -> None:
    found = status(cluster, app.namespace, app.name)
    migration = found["migration"]
    assert migration["state"] == "Succeeded", migration
    assert migration["releasedImage"] == app.manifest["spec"]["image"]
    assert condition(found, "Migrated")["status"] == "True"
    job = cluster.get("job", migration["job"], app.namespace)
    assert job["status"].get("succeeded") == 1
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("RealtimeApp", app.name)
    # Its command ran: seed_demo's output is in the Job's log.
    log = cluster.kubectl("logs", "-n", app.namespace, f"job/{migration['job']}").stdout
    assert "alice / alice-chat" in log, log[-2000:]


@pytest.fixture
def release_app(cluster: Cluster, app: App, images: Images) -> Iterator[App]:
    """``chat-release`` beside the chat app (same namespace and database), Ready."""
    manifest = release_manifest(
        app.manifest, images.chat, app.manifest["spec"]["django"]["settingsModule"]
    )
    made = App(app.namespace, NAME, manifest)
    cluster.apply(app.namespace, yaml.safe_dump(manifest))
    try:

        def ready() -> tuple[bool, Any]:
            found = status(cluster, app.namespace, NAME)
            return found.get("phase") == "Ready", found

        wait_until(f"RealtimeApp {NAME} Ready", ready, READY_TIMEOUT,
                   lambda: cluster.problems(app.namespace))  # fmt: skip
        yield made
    finally:
        cluster.kubectl("delete", "rtapp", NAME, "-n", app.namespace, "--ignore-not-found",
                        "--wait=false")  # fmt: skip


def test_a_failed_migration_keeps_the_old_release_serving_until_fixed(
    cluster: Cluster, release_app: App, images: Images
) -> None:
    namespace = release_app.namespace
    first = status(cluster, namespace, NAME)["migration"]
    job = cluster.get("job", first["job"], namespace)
    for deployment in (f"{NAME}-interface", f"{NAME}-worker"):
        made = cluster.get("deployment", deployment, namespace)["metadata"]["creationTimestamp"]
        assert made >= job["status"]["completionTime"], (deployment, "made before its migration")
    before = pods(cluster, namespace, NAME)
    assert set(before.values()) == {images.chat, images.interface}
    serves(release_app)

    # A broken release: its migration fails at once (the settings module does not exist).
    new_image = qualified(images.chat)
    settings = release_app.manifest["spec"]["django"]["settingsModule"]
    broken = release_manifest(release_app.manifest, new_image, MISSING_SETTINGS)
    cluster.apply(namespace, yaml.safe_dump(broken))

    def failed() -> tuple[bool, Any]:
        found = status(cluster, namespace, NAME)
        return condition(found, "Migrated").get("reason") == "MigrationFailed", found

    found = wait_until("the broken release's migration failed", failed, MIGRATION_TIMEOUT)
    message = condition(found, "Migrated")["message"]
    assert f"No module named '{MISSING_SETTINGS}'" in message, message
    assert "Last log lines:" in message
    ready = condition(found, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MigrationFailed")
    assert found["phase"] == "Degraded"
    assert found["migration"]["state"] == "Failed"
    assert found["migration"]["releasedImage"] == images.chat
    warnings = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector",
        f"involvedObject.name={NAME},reason=MigrationFailed,type=Warning", "-o", "json",
    ).stdout  # fmt: skip
    assert MISSING_SETTINGS in warnings
    wide = cluster.kubectl("get", "rtapp", NAME, "-n", namespace, "-o", "wide").stdout
    assert "Failed" in wide.splitlines()[1].split(), wide

    # Nothing rolled: the same pods, the old image and settings; the app still serves.
    assert pods(cluster, namespace, NAME) == before
    worker = cluster.get("deployment", f"{NAME}-worker", namespace)
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["image"] == images.chat
    assert {"name": "DJANGO_SETTINGS_MODULE", "value": settings} in container["env"]
    serves(release_app)

    # Fixed (the settings put back) and the failed Job deleted: it runs again, and rolls.
    cluster.apply(namespace, yaml.safe_dump(release_manifest(broken, new_image, settings)))
    cluster.kubectl("delete", "job", found["migration"]["job"], "-n", namespace)

    def rolled() -> tuple[bool, Any]:
        found = status(cluster, namespace, NAME)
        now = pods(cluster, namespace, NAME)
        done = (
            found.get("phase") == "Ready"
            and found.get("migration", {}).get("releasedImage") == new_image
            and new_image in now.values()
            and images.chat not in now.values()
        )
        return done, {"status": found.get("migration"), "pods": now}

    wait_until("the fixed release migrated and rolled", rolled, MIGRATION_TIMEOUT,
               lambda: cluster.problems(namespace))  # fmt: skip
    serves(release_app)
