"""The part of the end-to-end run (e2e/) that needs no container runtime, on a real control plane
(kube-apiserver, etcd, controller-manager, scheduler, kwok fake nodes):

``helm install`` of charts/channelworks (the RealtimeApp CRD from its crds/ with it), the
operator run as the installed Deployment runs it (its args and env, the chart ServiceAccount's
token: the chart's RBAC is all it may do), ``kubectl apply`` of examples/chat/k8s/realtimeapp.yaml
as a user would, the children the operator makes for it, the app getting Ready on a real Redis,
deleting it, and ``helm uninstall`` leaving nothing but the CRD (helm never deletes CRDs).

What kwok cannot do — run the images, serve WebSockets, scale on a real queue — is e2e/'s.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from channelworks_operator.kube import Kube
from tests.chart.helm import CHART, Helm
from tests.e2e_local.chart_operator import ChartOperator, service_account_kubeconfig
from tests.operator import apps
from tests.support.control_plane import REPO_ROOT, ControlPlane
from tests.support.eventually import eventually

CHAT_APP = REPO_ROOT / "examples" / "chat" / "k8s" / "realtimeapp.yaml"
CHAT_DATABASE = REPO_ROOT / "examples" / "chat" / "k8s" / "postgres.yaml"
RELEASE = "channelworks"
INSTALL_TIMEOUT = "180s"
WAIT = 90.0
CRD_NAME = "realtimeapps.channelworks.dev"
RELEASE_SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
client = kubernetes.client


@dataclass(frozen=True)
class Installed:
    namespace: str
    notes: str
    deployment: dict[str, Any]

    def arg(self, name: str) -> str:
        """The value of ``--name=value`` in the operator container's args."""
        (container,) = self.deployment["spec"]["template"]["spec"]["containers"]
        prefix = f"--{name}="
        (value,) = [a.removeprefix(prefix) for a in container["args"] if a.startswith(prefix)]
        return value


@pytest.fixture(scope="module")
def kube(own_kube_api: kubernetes.client.ApiClient) -> Kube:
    return Kube(own_kube_api, field_manager="e2e-local-tests")


def _serialised(own_kube_api: kubernetes.client.ApiClient, model: Any) -> dict[str, Any]:
    document: dict[str, Any] = own_kube_api.sanitize_for_serialization(model)
    return document


def _release_installed(helm: Helm, own_control_plane: ControlPlane, namespace: str) -> bool:
    done = helm.run(
        "status", RELEASE, "-n", namespace, env=own_control_plane.environ(), check=False
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def installed(
    helm: Helm, own_control_plane: ControlPlane, own_kube_api: kubernetes.client.ApiClient
) -> Iterator[Installed]:
    """``helm install --create-namespace --wait`` of the chart with its defaults."""
    namespace = f"channelworks-system-{secrets.token_hex(3)}"
    done = helm.run(
        "install", RELEASE, str(CHART), "--namespace", namespace, "--create-namespace",
        "--wait", "--timeout", INSTALL_TIMEOUT, env=own_control_plane.environ(),
    )  # fmt: skip
    (deployment,) = (
        client.AppsV1Api(own_kube_api).list_namespaced_deployment(
            namespace, label_selector=RELEASE_SELECTOR
        )
    ).items
    try:
        yield Installed(namespace, done.stdout, _serialised(own_kube_api, deployment))
    finally:
        if _release_installed(helm, own_control_plane, namespace):
            helm.run(
                "uninstall", RELEASE, "-n", namespace, env=own_control_plane.environ(), check=False
            )


@pytest.fixture(scope="module")
def operator(
    own_control_plane: ControlPlane, installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartOperator]:
    directory = tmp_path_factory.mktemp("operator")
    account = installed.deployment["spec"]["template"]["spec"]["serviceAccountName"]
    kubeconfig = service_account_kubeconfig(
        own_control_plane, installed.namespace, account, directory
    )
    process = ChartOperator(
        installed.deployment, kubeconfig=kubeconfig, log_path=directory / "operator.log"
    )
    try:
        yield process.start()
    finally:
        process.stop()


def _app_namespace(own_kube_api: kubernetes.client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(own_kube_api)
    core.create_namespace({"metadata": {"name": name}})
    # The chat app loads its database settings from postgres.yaml's Secret, applied first.
    documents = yaml.safe_load_all(CHAT_DATABASE.read_text())
    (secret,) = [document for document in documents if document["kind"] == "Secret"]
    core.create_namespaced_secret(name, secret)
    return name


def _chat_app() -> dict[str, Any]:
    app: dict[str, Any] = yaml.safe_load(CHAT_APP.read_text())
    return app


def _kubectl_apply(own_control_plane: ControlPlane, namespace: str, path: Path) -> str:
    return own_control_plane.kubectl("apply", "-n", namespace, "-f", str(path)).stdout


def _env(container: dict[str, Any]) -> dict[str, str | None]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def test_helm_installs_the_crd_and_an_available_operator(
    installed: Installed, own_kube_api: kubernetes.client.ApiClient
) -> None:
    crd = _crd(own_kube_api)
    assert crd is not None, "helm installs the CRD from the chart's crds/"
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    status = installed.deployment["status"]
    assert status["availableReplicas"] == installed.deployment["spec"]["replicas"] == 2
    assert "STATUS: deployed" in installed.notes
    assert "Create your first app" in installed.notes


def test_the_operator_leads_with_the_charts_lease_and_rights(
    operator: ChartOperator, installed: Installed, own_kube_api: kubernetes.client.ApiClient
) -> None:
    lease_name = installed.arg("leader-election-name")
    lease = client.CoordinationV1Api(own_kube_api).read_namespaced_lease(
        lease_name, installed.namespace
    )
    assert lease.spec.holder_identity == "operator-local-0", operator.log()


def test_the_chat_app_becomes_every_child_it_asks_for(
    operator: ChartOperator,
    installed: Installed,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    kube: Kube,
) -> None:
    namespace = _app_namespace(own_kube_api, "chat")
    wanted = _chat_app()
    applied = _kubectl_apply(own_control_plane, namespace, CHAT_APP)
    assert "realtimeapp.channelworks.dev/chat created" in applied

    expected = {
        "Deployment/chat-interface",
        "Deployment/chat-worker",
        "Service/chat-interface",
        "StatefulSet/chat-redis",
        "Service/chat-redis",
        "Secret/chat-redis",
        "NetworkPolicy/chat-redis",
        "PodDisruptionBudget/chat-interface",
        "PodDisruptionBudget/chat-worker",
    }

    def made() -> dict[str, dict[str, Any]]:
        found = apps.children(kube, namespace)
        missing = expected - set(found)
        assert not missing, f"not made yet: {sorted(missing)}\n{operator.log()}"
        return found

    found = eventually(made, timeout=WAIT, interval=0.5, message="the chat app's children")

    worker_pod = found["Deployment/chat-worker"]["spec"]["template"]["spec"]
    (worker,) = worker_pod["containers"]
    assert worker["image"] == wanted["spec"]["image"]
    worker_env = _env(worker)
    assert worker_env["DJANGO_SETTINGS_MODULE"] == "k8s_settings"
    assert worker_env["DJANGO_ALLOWED_HOSTS"] == "chat-interface,.svc,.cluster.local"
    assert worker_env["CHANNELWORKS_APP"] == f"{namespace}.chat"

    interface = found["Deployment/chat-interface"]
    assert interface["spec"]["replicas"] == wanted["spec"]["interface"]["replicas"]
    (interface_container,) = interface["spec"]["template"]["spec"]["containers"]
    assert interface_container["image"] == wanted["spec"]["interface"]["image"]

    redis = found["StatefulSet/chat-redis"]
    assert redis["spec"]["replicas"] == 1, "mode standalone: one Redis"
    assert not redis["spec"].get("volumeClaimTemplates"), "storage.ephemeral: no PVC"
    (redis_container,) = redis["spec"]["template"]["spec"]["containers"]
    assert redis_container["image"] == installed.arg("redis-image"), "from the chart"

    # kwok reports the pods Ready, but nothing listens behind them: the status must say that
    # the Redis it made cannot be reached (and not claim Ready, nor crash).
    def honest_status() -> dict[str, Any]:
        app = apps.get(kube, namespace)
        status = app.get("status") or {}
        assert status.get("observedGeneration") == 1, status
        assert apps.condition(app, "InterfaceAvailable").get("status") == "True", status
        assert apps.condition(app, "WorkersAvailable").get("status") == "True", status
        layer = apps.condition(app, "ChannelLayerReady")
        assert (layer.get("status"), layer.get("reason")) == ("False", "Unreachable"), layer
        return app

    app = eventually(honest_status, timeout=WAIT, interval=0.5, message="status of the chat app")
    assert f"chat-redis.{namespace}.svc:6379" in apps.condition(app, "ChannelLayerReady")["message"]
    assert apps.condition(app, "Ready")["status"] == "False"
    assert app["status"]["phase"] == "Degraded"
    assert app["status"]["endpoint"] == f"chat-interface.{namespace}.svc:8000"


def test_on_a_real_redis_the_chat_app_gets_ready(
    operator: ChartOperator,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    kube: Kube,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """The same manifest with the channel layer on a Redis this test runs (kwok's Redis pods
    would never answer): every condition turns True and ``kubectl get rtapp`` says so."""
    namespace = _app_namespace(own_kube_api, "chat-ready")
    app = _chat_app()
    app["spec"]["channelLayer"]["redis"] = {"mode": "external", "url": redis_url}
    manifest = tmp_path / "realtimeapp.yaml"
    manifest.write_text(yaml.safe_dump(app))
    _kubectl_apply(own_control_plane, namespace, manifest)

    ready = apps.wait_condition(kube, namespace, "Ready", "True", timeout=WAIT)
    assert ready["status"]["phase"] == "Ready"
    for condition in ("InterfaceAvailable", "WorkersAvailable", "ChannelLayerReady"):
        assert apps.condition(ready, condition)["status"] == "True", condition
    table = own_control_plane.kubectl("get", "rtapp", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "INTERFACE", "WORKERS", "QUEUE", "AGE"]
    assert table[1].split()[:5] == ["chat", "True", "2/2", "1/1", "0"]


def test_deleting_the_apps_and_uninstalling_the_chart_leaves_nothing(
    helm: Helm,
    operator: ChartOperator,
    installed: Installed,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    kube: Kube,
) -> None:
    # This test's own app, and whatever apps the tests above left.
    _kubectl_apply(own_control_plane, _app_namespace(own_kube_api, "chat-delete"), CHAT_APP)
    namespaces = [
        app["metadata"]["namespace"]
        for app in kube.list("channelworks.dev/v1alpha1", "RealtimeApp", None)
    ]

    def children_made() -> None:
        assert all(apps.children(kube, ns) for ns in namespaces), operator.log()

    eventually(children_made, timeout=WAIT, interval=0.5, message="children of every app")
    for namespace in namespaces:
        own_control_plane.kubectl(
            "delete", "rtapp", "chat", "-n", namespace, "--wait=true", timeout=WAIT
        )

    def children_collected() -> None:
        left = {ns: sorted(apps.children(kube, ns)) for ns in namespaces}
        assert not any(left.values()), f"children left after the app was deleted: {left}"

    # The controller-manager's garbage collector follows the owner references.
    eventually(children_collected, timeout=WAIT, interval=0.5, message="children collected")
    operator.stop()

    helm.run(
        "uninstall", RELEASE, "-n", installed.namespace, "--wait", "--timeout", INSTALL_TIMEOUT,
        env=own_control_plane.environ(),
    )  # fmt: skip
    leftovers = _release_objects(own_kube_api, installed.namespace)
    assert not leftovers, f"left after helm uninstall: {leftovers}"
    assert _crd(own_kube_api) is not None, (
        "helm leaves CRDs installed from crds/ (deleting it would delete every app)"
    )


def _crd(own_kube_api: kubernetes.client.ApiClient) -> dict[str, Any] | None:
    try:
        found = client.ApiextensionsV1Api(own_kube_api).read_custom_resource_definition(CRD_NAME)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return _serialised(own_kube_api, found)


def _release_objects(own_kube_api: kubernetes.client.ApiClient, namespace: str) -> list[str]:
    """Everything labelled as the release's, in its namespace and cluster-wide."""
    core, apps_api = client.CoreV1Api(own_kube_api), client.AppsV1Api(own_kube_api)
    rbac, policy = client.RbacAuthorizationV1Api(own_kube_api), client.PolicyV1Api(own_kube_api)
    lists = {
        "Deployment": apps_api.list_namespaced_deployment(
            namespace, label_selector=RELEASE_SELECTOR
        ),
        "Pod": core.list_namespaced_pod(namespace, label_selector=RELEASE_SELECTOR),
        "Service": core.list_namespaced_service(namespace, label_selector=RELEASE_SELECTOR),
        "ServiceAccount": core.list_namespaced_service_account(
            namespace, label_selector=RELEASE_SELECTOR
        ),
        "Role": rbac.list_namespaced_role(namespace, label_selector=RELEASE_SELECTOR),
        "RoleBinding": rbac.list_namespaced_role_binding(
            namespace, label_selector=RELEASE_SELECTOR
        ),
        "ClusterRole": rbac.list_cluster_role(label_selector=RELEASE_SELECTOR),
        "ClusterRoleBinding": rbac.list_cluster_role_binding(label_selector=RELEASE_SELECTOR),
        "PodDisruptionBudget": policy.list_namespaced_pod_disruption_budget(
            namespace, label_selector=RELEASE_SELECTOR
        ),
    }
    return [
        f"{kind}/{item.metadata.name}"
        for kind, listed in lists.items()
        for item in listed.items
        if not (kind == "Pod" and item.metadata.deletion_timestamp)
    ]
