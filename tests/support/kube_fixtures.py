"""pytest plugin: a real Kubernetes control plane (see ``tests/support/control_plane.py``).

Enable it in the top-level ``tests/conftest.py``::

    pytest_plugins = ["tests.support.kube_fixtures"]

The control plane starts on first use, once per pytest process (so once per xdist worker), and
stops at the end of the session. Its binaries come from ``tools/kube/build-binaries.sh``; when
they are missing the first test that needs them errors with that instruction.

- ``control_plane`` (session): the ``ControlPlane``: ``.kubeconfig``, ``.api_client()``,
  ``.kubectl(...)``, ``.environ()`` (``KUBECONFIG`` set, for subprocesses), ``.log(name)``.
- ``kube_api`` (session): one ``kubernetes.client.ApiClient`` for the whole session.
- ``own_control_plane``, ``own_kube_api`` (per module): a control plane of the test module's
  own, for tests that install cluster-wide objects (the chart) the others must not see.
- ``helm`` (session): the pinned helm (``tests.chart.helm.Helm``); tests that need it are skipped,
  saying why, when it is not built.
- ``namespace`` (per test): the name of a fresh namespace whose ``default`` service account
  exists (so pods can be created at once); it is deleted after the test, without waiting.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import kubernetes
import pytest

from tests.chart.helm import Helm
from tests.support.control_plane import ControlPlane, ControlPlaneError, helm_binary
from tests.support.eventually import eventually

NAMESPACE_READY_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd, kube-apiserver, controller-manager, scheduler and one kwok fake node."""
    with ControlPlane() as plane:
        yield plane


@pytest.fixture(scope="session")
def kube_api(control_plane: ControlPlane) -> Iterator[kubernetes.client.ApiClient]:
    """A ``kubernetes.client.ApiClient`` authenticated as a cluster admin."""
    with control_plane.api_client() as client:
        yield client


@pytest.fixture(scope="module")
def own_control_plane() -> Iterator[ControlPlane]:
    """A control plane of this test module's own: what it installs cluster-wide stays there."""
    with ControlPlane() as plane:
        yield plane


@pytest.fixture(scope="module")
def own_kube_api(own_control_plane: ControlPlane) -> Iterator[kubernetes.client.ApiClient]:
    with own_control_plane.api_client() as client:
        yield client


@pytest.fixture(scope="session")
def helm() -> Helm:
    try:
        binary = helm_binary()
    except ControlPlaneError as error:
        pytest.skip(f"no helm binary, so the chart cannot be installed or rendered: {error}")
    return Helm(binary)


def namespace_name(test_name: str) -> str:
    """``t-<test name>-<random>``, cut to a valid DNS label (63 characters at most)."""
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:48].rstrip("-")
    return f"t-{stem}-{secrets.token_hex(4)}"


@pytest.fixture
def namespace(
    request: pytest.FixtureRequest, kube_api: kubernetes.client.ApiClient
) -> Iterator[str]:
    """A fresh namespace, named after the test, deleted afterwards."""
    core = kubernetes.client.CoreV1Api(kube_api)
    name = namespace_name(request.node.name)
    labels = {"channelworks.dev/test": "true"}
    meta = kubernetes.client.V1ObjectMeta(name=name, labels=labels)
    core.create_namespace(kubernetes.client.V1Namespace(metadata=meta))

    def default_service_account_exists() -> None:
        core.read_namespaced_service_account("default", name)

    eventually(
        default_service_account_exists,
        timeout=NAMESPACE_READY_TIMEOUT,
        interval=0.1,
        message=f"service account default in namespace {name}",
        retry_on=(kubernetes.client.ApiException,),
    )
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")
