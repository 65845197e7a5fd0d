"""``channelworks status NAME`` reads the RealtimeApp from the real kube-apiserver (with the
kubeconfig, as kubectl does) and prints its status; every way of not getting there is said
plainly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from tests.cli import cli
from tests.cli.conftest import GROUP, PLURAL, VERSION
from tests.support.control_plane import ControlPlane
from tests.support.redis_servers import free_port

APP = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "RealtimeApp",
    "metadata": {"name": "tickets"},
    "spec": {"image": "registry.example/tickets-worker:2.0"},
}


def condition(
    kind: str, status: str, reason: str, message: str, minutes_ago: int
) -> dict[str, Any]:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return {
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "observedGeneration": 1,
    }  # fmt: skip


def full_status() -> dict[str, Any]:
    """A status as the operator writes it, its conditions dated from now."""
    return {
        "observedGeneration": 1,
        "phase": "Degraded",
        "conditions": [
            condition(
                "Ready",
                "False",
                "ReplicasUnavailable",
                "WorkersAvailable: 1 of 3 worker pods available",
                4,
            ),
            condition(
                "InterfaceAvailable",
                "True",
                "MinimumReplicasAvailable",
                "2 interface pods available",
                30,
            ),
            condition(
                "WorkersAvailable",
                "False",
                "ReplicasUnavailable",
                "1 of 3 worker pods available",
                4,
            ),
            condition("ChannelLayerReady", "True", "ClusterReady", "6 nodes ready", 125),
        ],
        "interface": {"replicas": 2, "readyReplicas": 2, "ready": "2/2"},
        "worker": {"replicas": 3, "readyReplicas": 1, "desiredReplicas": 3, "ready": "1/3"},
        "channelLayer": {"mode": "cluster", "nodes": 6, "readyNodes": 6},
        "autoscaler": {
            "desiredReplicas": 5,
            "reason": "ScaledUp",
            "message": "queue depth 420 at a target of 100 per worker: 3 -> 5 workers",
        },
        "queueDepth": 420,
        "oldestMessageAgeSeconds": 3.25,
        "endpoint": "tickets-interface.shop.svc:8000",
    }


@pytest.fixture
def app(
    realtimeapp_crd: dict[str, Any], kube_api: kubernetes.client.ApiClient, namespace: str
) -> str:
    objects = kubernetes.client.CustomObjectsApi(kube_api)
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, APP)
    return namespace


def set_status(api: kubernetes.client.ApiClient, namespace: str, status: dict[str, Any]) -> None:
    objects = kubernetes.client.CustomObjectsApi(api)
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "tickets", {"status": status}
    )


def kubeconfig_copy(plane: ControlPlane, folder: Path, **change: Any) -> Path:
    """The control plane's kubeconfig with ``server``, ``token`` or ``namespace`` changed."""
    config = yaml.safe_load(plane.kubeconfig.read_text())
    if "server" in change:
        config["clusters"][0]["cluster"]["server"] = change["server"]
    if "token" in change:
        config["users"][0]["user"]["token"] = change["token"]
    if "namespace" in change:
        config["contexts"][0]["context"]["namespace"] = change["namespace"]
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def status(plane: ControlPlane, *args: str, kubeconfig: Path | None = None) -> tuple[int, str]:
    env = cli.clean_env(KUBECONFIG=str(kubeconfig or plane.kubeconfig))
    done = cli.run("status", *args, env=env)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


def test_the_summary_shows_what_the_status_says(
    app: str, control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient
) -> None:
    code, before = status(control_plane, "tickets", "-n", app)
    assert code == 0
    assert f"RealtimeApp {app}/tickets: no status yet" in before
    set_status(kube_api, app, full_status())
    code, shown = status(control_plane, "tickets", "-n", app)
    assert code == 0, shown
    lines = shown.splitlines()
    assert lines[0] == f"RealtimeApp {app}/tickets: Degraded"
    assert "  image       registry.example/tickets-worker:2.0" in lines
    assert "  endpoint    tickets-interface.shop.svc:8000" in lines
    assert "  interface   2/2 ready" in lines
    assert (
        "  workers     1/3 ready, autoscaler wants 5 (ScaledUp: queue depth 420 at a target of 100"
        " per worker: 3 -> 5 workers)"
    ) in lines
    assert "  queue       420 messages waiting, the oldest for 3.2 s" in lines
    assert "  layer       cluster, 6/6 Redis nodes ready" in lines
    ready = next(line for line in lines if line.strip().startswith("Ready "))
    assert "False" in ready
    assert "ReplicasUnavailable: WorkersAvailable: 1 of 3 worker pods available (4m ago)" in ready
    layer = next(line for line in lines if "ChannelLayerReady" in line)
    assert "(2h ago)" in layer


def test_a_failed_migration_is_shown_with_its_log_as_a_block(
    app: str, control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient
) -> None:
    """As the operator writes a failed migration: status.migration, and Ready and Migrated
    False with the Job's last log lines in the message (several lines)."""
    log = 'Job tickets-migrate-5d1e failed. Last log lines:\n  File "x.py"\nOperationalError: boom'
    migrated = condition("Migrated", "False", "MigrationFailed", log, 2)
    failed = {
        **full_status(),
        "conditions": [condition("Ready", "False", "MigrationFailed", log, 2), migrated],
        "migration": {
            "image": "registry.example/tickets-worker:2.0",
            "job": "tickets-migrate-5d1e",
            "state": "Failed",
            "releasedImage": "registry.example/tickets-worker:1.9",
        },
    }
    set_status(kube_api, app, failed)
    code, shown = status(control_plane, "tickets", "-n", app)
    assert code == 0, shown
    lines = shown.splitlines()
    assert (
        "  migration   Failed (Job tickets-migrate-5d1e, image registry.example/tickets-worker:2.0;"
        " released registry.example/tickets-worker:1.9)"
    ) in lines
    ready = next(n for n, line in enumerate(lines) if line.strip().startswith("Ready "))
    assert lines[ready].endswith(
        "MigrationFailed: Job tickets-migrate-5d1e failed. Last log lines: (2m ago)"
    )
    # The log lines follow, under the reason, before the next condition.
    column = lines[ready].index("MigrationFailed")
    assert lines[ready + 1] == " " * column + '  File "x.py"'
    assert lines[ready + 2] == " " * column + "OperationalError: boom"
    assert lines[ready + 3].strip().startswith("Migrated ")


def test_a_status_behind_the_spec_is_pointed_out(
    app: str, control_plane: ControlPlane, kube_api: kubernetes.client.ApiClient
) -> None:
    set_status(kube_api, app, full_status())
    objects = kubernetes.client.CustomObjectsApi(kube_api)
    objects.patch_namespaced_custom_object(
        GROUP, VERSION, app, PLURAL, "tickets", {"spec": {"image": "registry.example/t:2.1"}}
    )
    code, shown = status(control_plane, "tickets", "-n", app)
    assert code == 0
    assert "this status is of generation 1; the operator has not yet acted on generation 2" in shown


def test_the_namespace_comes_from_the_kubeconfig_context(
    app: str, control_plane: ControlPlane, tmp_path: Path
) -> None:
    config = kubeconfig_copy(control_plane, tmp_path, namespace=app)
    code, shown = status(control_plane, "tickets", kubeconfig=config)
    assert code == 0 and f"RealtimeApp {app}/tickets" in shown
    code, said = status(control_plane, "tickets")  # the plain kubeconfig: namespace default
    assert code == 1 and "no RealtimeApp 'tickets' in namespace 'default'" in said


def test_a_missing_app_is_named(app: str, control_plane: ControlPlane) -> None:
    code, said = status(control_plane, "nothing-here", "-n", app)
    assert code == 1
    assert f"channelworks status: no RealtimeApp 'nothing-here' in namespace '{app}'" in said
    assert f"kubectl get rtapp -n {app}" in said


@pytest.mark.usefixtures("realtimeapp_crd")
def test_connection_problems_are_told_apart(control_plane: ControlPlane, tmp_path: Path) -> None:
    closed = f"https://127.0.0.1:{free_port()}"
    unreachable = kubeconfig_copy(control_plane, tmp_path, server=closed)
    code, said = status(control_plane, "tickets", kubeconfig=unreachable)
    assert code == 1 and f"cannot reach the cluster at {closed}" in said
    code, said = status(control_plane, "tickets", kubeconfig=tmp_path / "no-such-file")
    assert code == 1 and "no usable kubeconfig" in said
    code, said = status(control_plane, "tickets", "--context", "prod")
    assert code == 1 and "--context prod: no such context" in said
    wrong_token = kubeconfig_copy(control_plane, tmp_path, token="not-the-token")
    code, said = status(control_plane, "tickets", kubeconfig=wrong_token)
    assert code == 1 and "refused the kubeconfig's credentials (401 Unauthorized)" in said


@pytest.fixture(scope="module")
def bare_cluster() -> Iterator[ControlPlane]:
    """A control plane of its own, where the CRD was never installed."""
    with ControlPlane(nodes=0) as plane:
        yield plane


def test_a_cluster_without_the_crd_is_told_so(bare_cluster: ControlPlane) -> None:
    code, said = status(bare_cluster, "tickets", "-n", "default")
    assert code == 1
    assert (
        "does not know RealtimeApps (the CRD realtimeapps.channelworks.dev is not installed)"
        in (said)
    )
    assert "Helm chart" in said
