"""Fixtures of the end-to-end suite: a real cluster with a container runtime (kind, or any
cluster), the images built from this checkout, the chart installed, the chat app applied.

Configuration (environment; e2e/kind.sh sets it for a kind cluster):

- ``CHANNELWORKS_E2E_KUBECONFIG`` (required, else every test is skipped): the cluster.
- ``CHANNELWORKS_E2E_KIND_CLUSTER``: load the images into this kind cluster (``kind load``).
- ``CHANNELWORKS_E2E_REGISTRY``: or push them to this registry prefix (``registry:5000/me``),
  which the cluster pulls from. With neither, the images must already be on the nodes.
- ``CHANNELWORKS_E2E_TAG`` (``dev``): the tag of the images built.
- ``KUBECTL``, ``HELM``, ``DOCKER``, ``KIND``: the tools, when not on PATH.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import CHART, CHAT_APP, RELEASE, ROOT, App, Cluster, Images, Release, run, tool

OPERATOR_NAMESPACE = "channelworks-e2e-system"
INSTALL_TIMEOUT = "600s"
READY_TIMEOUT = "600s"
BUILT_BY_SCRIPT = {  # image -> Dockerfile; tools/skaffold/build-image.sh fills build/images/
    "channelworks/operator": "operator/Dockerfile",
    "channelworks/interface": "Dockerfile.interface",
    "channelworks/worker": "Dockerfile.worker",
}
CHAT_IMAGE = "channelworks/chat-example"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CHANNELWORKS_E2E_KUBECONFIG"):
        return
    skip = pytest.mark.skip(
        reason="CHANNELWORKS_E2E_KUBECONFIG is not set: the e2e suite needs a cluster with a "
        "container runtime (e2e/kind.sh makes one with kind)"
    )
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    kubeconfig = Path(os.environ["CHANNELWORKS_E2E_KUBECONFIG"])
    if not kubeconfig.is_file():
        pytest.fail(f"CHANNELWORKS_E2E_KUBECONFIG={kubeconfig}: no such file")
    found = Cluster(kubeconfig, tool("kubectl", "KUBECTL"), tool("helm", "HELM"))
    found.kubectl("version")  # the API server answers
    return found


def _reference(image: str) -> str:
    registry = os.environ.get("CHANNELWORKS_E2E_REGISTRY", "").rstrip("/")
    tag = os.environ.get("CHANNELWORKS_E2E_TAG", "dev")
    return f"{registry}/{image}:{tag}" if registry else f"{image}:{tag}"


@pytest.fixture(scope="session")
def images(cluster: Cluster) -> Images:
    """The four images built from this checkout and made available to the cluster's nodes."""
    docker = tool("docker", "DOCKER")
    refs = {image: _reference(image) for image in [*BUILT_BY_SCRIPT, CHAT_IMAGE]}
    for image, dockerfile in BUILT_BY_SCRIPT.items():
        script = str(ROOT / "tools" / "skaffold" / "build-image.sh")
        run(["bash", script, dockerfile], env={"IMAGE": refs[image], "BUILD_CONTEXT": str(ROOT)})
    run([
        docker, "build", "--file", str(ROOT / "examples" / "chat" / "k8s" / "Dockerfile"),
        "--build-arg", f"WORKER_IMAGE={refs['channelworks/worker']}",
        "--tag", refs[CHAT_IMAGE], str(ROOT / "examples" / "chat"),
    ], env={"DOCKER_BUILDKIT": "1"})  # fmt: skip
    kind_cluster = os.environ.get("CHANNELWORKS_E2E_KIND_CLUSTER")
    for ref in refs.values():
        if kind_cluster:
            run([tool("kind", "KIND"), "load", "docker-image", "--name", kind_cluster, ref])
        elif os.environ.get("CHANNELWORKS_E2E_REGISTRY"):
            run([docker, "push", ref])
    return Images(refs)


@pytest.fixture(scope="session")
def release(cluster: Cluster, images: Images) -> Iterator[Release]:
    """The chart installed with the images built here; uninstalled at the end if still there."""
    operator, interface = "channelworks/operator", "channelworks/interface"
    notes = cluster.helm(
        "install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
        "--wait", "--timeout", INSTALL_TIMEOUT,
        "--set", f"image.repository={images.repository(operator)}",
        "--set", f"image.tag={images.tag(operator)}",
        "--set", f"operator.interfaceImage.repository={images.repository(interface)}",
        "--set", f"operator.interfaceImage.tag={images.tag(interface)}",
        "--set", "operator.resyncSeconds=10",
    )  # fmt: skip
    try:
        yield Release(OPERATOR_NAMESPACE, notes)
    finally:
        listed = cluster.helm("list", "-n", OPERATOR_NAMESPACE, "-q")
        if RELEASE in listed.split():
            cluster.helm("uninstall", RELEASE, "-n", OPERATOR_NAMESPACE, "--wait")


def chat_manifest(images: Images) -> dict[str, Any]:
    """examples/chat/k8s/realtimeapp.yaml with the image references the cluster runs."""
    app: dict[str, Any] = yaml.safe_load(CHAT_APP.read_text())
    app["spec"]["image"] = images.refs[CHAT_IMAGE]
    app["spec"]["interface"]["image"] = images.refs["channelworks/interface"]
    return app


@pytest.fixture(scope="session")
def app(cluster: Cluster, images: Images, release: Release) -> Iterator[App]:
    """The chat RealtimeApp applied in a namespace of its own, and Ready."""
    namespace = f"chat-e2e-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    manifest = chat_manifest(images)
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
        cluster.kubectl(
            "wait", "-n", namespace, "rtapp/chat", "--for=condition=Ready",
            f"--timeout={READY_TIMEOUT}", timeout=700,
        )  # fmt: skip
        yield App(namespace, "chat", manifest)
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
