"""Fixtures of the end-to-end suite: a real cluster, the chart installed once, the chat app
(with its PostgreSQL; the operator runs its migrations) applied once; all session-scoped,
shared by every test file of e2e/.

Where it runs (e2e/README.md):

- **The real node** (``e2e/run-on-node.sh``): the suite runs inside the node's namespaces
  (``e2e/node.sh exec``), which export the node's env file (``KUBECONFIG``,
  ``CHANNELWORKS_NODE_*``). The images are already imported into the node's containerd by
  e2e/images.sh (no registry, ``imagePullPolicy: IfNotPresent``); clients reach Services by their
  ClusterIP and cluster DNS names, through kube-proxy.
- **Any cluster** whose Services this process can reach: ``CHANNELWORKS_E2E_KUBECONFIG``.

Without either, every test is skipped with that reason.

Configuration (environment):

- ``CHANNELWORKS_E2E_KUBECONFIG``: the cluster (else the node's ``KUBECONFIG``).
- ``CHANNELWORKS_E2E_TAG`` (``dev``): tag of the operator, interface and chat images.
- ``CHANNELWORKS_E2E_REDIS_IMAGE``, ``CHANNELWORKS_E2E_POSTGRES_IMAGE``: the Redis image the
  operator runs and the chat's PostgreSQL image (default: e2e/images.sh's, on the node).
- ``KUBECTL``, ``HELM``: the tools, when not on PATH.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import (
    CHART,
    CHAT_APP,
    CHAT_DATABASE,
    RELEASE,
    App,
    Cluster,
    Images,
    Release,
    tool,
    wait_until,
)

pytest_plugins = ["e2e.fixtures_chat", "e2e.fixtures_monitoring", "e2e.fixtures_load"]

OPERATOR_NAMESPACE = "channelworks-e2e-system"
INSTALL_TIMEOUT = "300s"
READY_TIMEOUT = 300.0
# e2e/images.sh's names for the images the node has but no product build makes.
NODE_REDIS_IMAGE = "localhost/channelworks/redis:7.0-bookworm"
NODE_POSTGRES_IMAGE = "localhost/channelworks/postgres:15-bookworm"


def _kubeconfig() -> str | None:
    given = os.environ.get("CHANNELWORKS_E2E_KUBECONFIG")
    if given:
        return given
    if os.environ.get("CHANNELWORKS_NODE_NAME"):  # inside `e2e/node.sh exec`
        return os.environ.get("KUBECONFIG")
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "last: run after every other test (it deletes the app and the release)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)  # stable
    if _kubeconfig():
        return
    skip = pytest.mark.skip(
        reason="no cluster: run e2e/run-on-node.sh (a real node in a network namespace), or set "
        "CHANNELWORKS_E2E_KUBECONFIG to a cluster whose Services this process can reach"
    )
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    kubeconfig = Path(_kubeconfig() or "")
    if not kubeconfig.is_file():
        pytest.fail(f"kubeconfig {kubeconfig}: no such file")
    found = Cluster(kubeconfig, tool("kubectl", "KUBECTL"), tool("helm", "HELM"))
    found.kubectl("version")  # the API server answers
    return found


@pytest.fixture(scope="session")
def images() -> Images:
    """What the cluster runs: the images e2e/images.sh imported into the node's containerd."""
    tag = os.environ.get("CHANNELWORKS_E2E_TAG", "dev")
    return Images(
        operator=f"channelworks/operator:{tag}",
        interface=f"channelworks/interface:{tag}",
        chat=f"channelworks/chat-example:{tag}",
        redis=os.environ.get("CHANNELWORKS_E2E_REDIS_IMAGE", NODE_REDIS_IMAGE),
        postgres=os.environ.get("CHANNELWORKS_E2E_POSTGRES_IMAGE", NODE_POSTGRES_IMAGE),
    )


def chart_values(images: Images) -> list[str]:
    """``helm install`` flags: the images here, quick resyncs, the monitoring objects on."""
    return [
        "--set", f"image.repository={images.repository(images.operator)}",
        "--set", f"image.tag={images.tag(images.operator)}",
        "--set", "image.pullPolicy=IfNotPresent",
        "--set", f"operator.interfaceImage.repository={images.repository(images.interface)}",
        "--set", f"operator.interfaceImage.tag={images.tag(images.interface)}",
        "--set", f"operator.redisImage={images.redis}",
        "--set", "operator.resyncSeconds=10",
        "--set", "serviceMonitor.enabled=true",
        "--set", "serviceMonitor.interval=5s",
        "--set", "serviceMonitor.scrapeTimeout=4s",  # at most the interval
        "--set", "prometheusRule.enabled=true",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def release(cluster: Cluster, images: Images, monitoring_crds: None) -> Iterator[Release]:
    """The chart installed once (with the Prometheus Operator's CRDs first, so its
    ServiceMonitor and PrometheusRule are made); uninstalled at the end if still there."""
    try:
        notes = cluster.helm(
            "install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE,
            "--create-namespace", "--wait", "--timeout", INSTALL_TIMEOUT, *chart_values(images),
        )  # fmt: skip
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n{cluster.problems(OPERATOR_NAMESPACE)}") from None
    try:
        yield Release(OPERATOR_NAMESPACE, RELEASE, notes)
    finally:
        listed = cluster.helm("list", "-n", OPERATOR_NAMESPACE, "-q")
        if RELEASE in listed.split():
            cluster.helm("uninstall", RELEASE, "-n", OPERATOR_NAMESPACE, "--wait")
        cluster.kubectl("delete", "namespace", OPERATOR_NAMESPACE, "--ignore-not-found",
                        "--wait=false")  # fmt: skip


def _with_image(documents: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
    """The manifests with every container's image replaced (Deployments)."""
    for document in documents:
        if document["kind"] == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                container["image"] = image
    return documents


def database_manifests(images: Images) -> str:
    """examples/chat/k8s/postgres.yaml with the PostgreSQL image the cluster has."""
    documents = list(yaml.safe_load_all(CHAT_DATABASE.read_text()))
    return yaml.safe_dump_all(_with_image(documents, images.postgres))


def chat_manifest(images: Images) -> dict[str, Any]:
    """examples/chat/k8s/realtimeapp.yaml with the image references the cluster runs."""
    app: dict[str, Any] = yaml.safe_load(CHAT_APP.read_text())
    app["spec"]["image"] = images.chat
    app["spec"]["interface"]["image"] = images.interface
    return app


@pytest.fixture(scope="session")
def app(cluster: Cluster, images: Images, release: Release) -> Iterator[App]:
    """The chat recipe, as docs/examples.md applies it, in a namespace of its own: PostgreSQL,
    then the RealtimeApp, Ready once the operator's migration Job made the tables and demo users.
    The namespace (with the database) lives until the session ends."""
    namespace = f"chat-e2e-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    manifest = chat_manifest(images)

    def explain() -> str:
        return cluster.problems(namespace)

    try:
        cluster.apply(namespace, database_manifests(images))
        # Applied at once, as a user would: the operator's Job waits for the database.
        cluster.apply(namespace, yaml.safe_dump(manifest))

        def ready() -> tuple[bool, Any]:
            status = cluster.get("rtapp", "chat", namespace).get("status") or {}
            return status.get("phase") == "Ready", status

        wait_until("RealtimeApp chat Ready", ready, READY_TIMEOUT, explain)
        yield App(namespace, "chat", manifest)
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
