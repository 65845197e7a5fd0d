"""Fixtures of the operator's tests: the CRD and RBAC installed on the real control plane, and
operator processes running as a ServiceAccount bound to exactly the rules of operator/rbac.yaml
(so the tests also prove the RBAC is enough)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from channelworks_operator import rbac
from channelworks_operator.kube import Kube
from tests.operator import crd, optional_apis
from tests.operator.operator_process import OperatorProcess, describe
from tests.support.control_plane import ControlPlane, kubeconfig


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def kube(kube_api: kubernetes.client.ApiClient) -> Kube:
    """The operator's own dict-based client, as a cluster admin, for the tests' checks."""
    return Kube(kube_api, field_manager="channelworks-tests")


@pytest.fixture(scope="session")
def crd_installed(kube: Kube) -> dict[str, Any]:
    """The CRD from charts/channelworks/crds/, applied as it is and Established."""
    return crd.install(kube, "channelworks-tests")


@dataclass(frozen=True)
class OperatorAccount:
    """A ServiceAccount bound to the operator's ClusterRole, and a kubeconfig to act as it."""

    namespace: str
    name: str
    kubeconfig: Path


@pytest.fixture(scope="session")
def operator_account(
    kube_api: kubernetes.client.ApiClient,
    control_plane: ControlPlane,
    crd_installed: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> OperatorAccount:
    """The operator's identity in the tests: only the rules of rbac.py, nothing more."""
    home = f"channelworks-system-{secrets.token_hex(3)}"
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": home}})
    core.create_namespaced_service_account(home, {"metadata": {"name": "operator"}})
    rbac_api = kubernetes.client.RbacAuthorizationV1Api(kube_api)
    cluster_role, _ = rbac.manifests()
    cluster_role["metadata"]["name"] = home
    rbac_api.create_cluster_role(cluster_role)
    rbac_api.create_cluster_role_binding(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": home},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": home,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": home}],
        }
    )
    request = {"spec": {"expirationSeconds": 86400}}
    answer = core.create_namespaced_service_account_token("operator", home, request)
    config = kubeconfig(control_plane.server, control_plane.ca_file, answer.status.token)
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return OperatorAccount(home, "operator", path)


OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture
def operators(
    request: pytest.FixtureRequest,
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    operator_account: OperatorAccount,
    tmp_path: Path,
) -> Iterator[OperatorFactory]:
    """Start operator processes watching the test's namespace; all are stopped afterwards.

    The leader election Role of rbac.py is bound in that namespace (the Lease lives there).
    """
    _, role = rbac.manifests()
    rbac_api = kubernetes.client.RbacAuthorizationV1Api(kube_api)
    rbac_api.create_namespaced_role(namespace, role)
    rbac_api.create_namespaced_role_binding(
        namespace,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role["metadata"]["name"]},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role["metadata"]["name"],
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": operator_account.name,
                    "namespace": operator_account.namespace,
                }
            ],
        },
    )
    started: list[OperatorProcess] = []

    def start(identity: str | None = None, **kwargs: Any) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig=operator_account.kubeconfig,
            namespace=namespace,
            identity=identity or f"operator-{len(started)}",
            log_dir=tmp_path,
            **kwargs,
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
    if request.node.stash.get(FAILED, False):
        print(describe(started))


@pytest.fixture
def crds(kube: Kube) -> Iterator[optional_apis.Crds]:
    """Set up before ``operators`` so the operator has stopped when its CRDs go away."""
    with optional_apis.Crds(kube) as installed:
        yield installed
