"""The test control plane behaves like a cluster: what the operator's tests rely on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import kubernetes
import psutil
import pytest

from tests.support import control_plane as cp
from tests.support.eventually import eventually

WAIT = 90.0
client = kubernetes.client


def test_apiserver_answers_with_the_pinned_version(
    control_plane: cp.ControlPlane, kube_api: kubernetes.client.ApiClient
) -> None:
    version = client.VersionApi(kube_api).get_code()
    pinned = cp.bin_dirs().kube.parent.name  # .../kube/<k8s-version>/bin
    assert version.git_version == pinned
    nodes = client.CoreV1Api(kube_api).list_node().items
    assert [node.metadata.name for node in nodes if node.metadata] == control_plane.node_names


def test_deployment_pods_become_running_and_ready_on_the_fake_node(
    kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    labels = {"app": "web"}
    container = client.V1Container(
        name="web",
        image="registry.invalid/web:1",
        readiness_probe=client.V1Probe(http_get=client.V1HTTPGetAction(path="/healthz", port=8000)),
    )
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment)

    def all_replicas_ready() -> None:
        status = apps.read_namespaced_deployment("web", namespace).status
        assert status is not None and status.ready_replicas == 2, status

    eventually(all_replicas_ready, timeout=WAIT, interval=0.5)
    pods = client.CoreV1Api(kube_api).list_namespaced_pod(namespace, label_selector="app=web")
    assert len(pods.items) == 2
    for pod in pods.items:
        assert pod.status is not None and pod.spec is not None
        assert pod.status.phase == "Running"
        assert pod.spec.node_name == "kwok-node-0"
        ready = [c.status for c in pod.status.conditions or [] if c.type == "Ready"]
        assert ready == ["True"]


def test_deleting_an_owner_garbage_collects_its_child(
    kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    assert owner.metadata is not None and owner.metadata.uid is not None
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    child_meta = client.V1ObjectMeta(name="child", owner_references=[reference])
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=child_meta))
    core.delete_namespaced_config_map("owner", namespace)

    def child_is_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", namespace)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    eventually(child_is_gone, timeout=WAIT, interval=0.5)


def test_kubectl_with_the_kubeconfig_lists_namespaces(
    control_plane: cp.ControlPlane, namespace: str
) -> None:
    done = control_plane.kubectl("get", "namespaces", "-o", "name")
    assert f"namespace/{namespace}" in done.stdout.split()
    assert "namespace/kube-system" in done.stdout.split()
    mode = stat.S_IMODE(os.stat(control_plane.kubeconfig).st_mode)
    assert mode == 0o600, "the kubeconfig holds an admin token"


def test_every_component_listens_on_loopback_only(control_plane: cp.ControlPlane) -> None:
    listening = {
        name: {
            conn.laddr.ip
            for conn in psutil.Process(pid).net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        }
        for name, pid in control_plane.pids.items()
    }
    assert listening["kube-apiserver"] == {cp.HOST}
    assert all(addresses <= {cp.HOST} for addresses in listening.values()), listening


def test_missing_binaries_say_how_to_build_them(tmp_path: Path) -> None:
    with pytest.raises(cp.ControlPlaneError, match=r"run tools/kube/build-binaries\.sh"):
        cp.kube_binaries(cp.BinDirs(kube=tmp_path, helm=tmp_path))


def test_a_component_that_fails_to_start_shows_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "etcd"
    broken.write_text("#!/bin/sh\necho 'etcd: cannot open data dir: disk on fire' >&2\nexit 3\n")
    broken.chmod(0o755)
    binaries = {name: broken for name in cp.KUBE_BINARIES}
    plane = cp.ControlPlane(binaries=binaries, startup_timeout=20)
    with pytest.raises(cp.ControlPlaneError, match="exited with code 3") as error:
        plane.start()
    assert "disk on fire" in str(error.value)
    assert plane.pids == {}, "nothing is left running"


@pytest.mark.control_plane  # starts its own, without the fixture
@pytest.mark.timeout(240)
def test_stopping_ends_every_process_and_removes_the_directory() -> None:
    plane = cp.ControlPlane(nodes=2)
    with plane:
        pids = plane.pids
        root = plane.layout.root
        assert set(pids) == set(cp.KUBE_BINARIES)
        assert len(plane.kubectl("get", "nodes", "-o", "name").stdout.split()) == 2
    assert not root.exists()
    assert not any(psutil.pid_exists(pid) for pid in pids.values())
