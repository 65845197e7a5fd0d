"""``channelworks manifest`` prints a RealtimeApp that the real kube-apiserver accepts (a
server-side dry-run create against the chart's CRD), and refuses values the CRD would refuse."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, cast

import kubernetes
import pytest
import yaml

from tests.cli import cli
from tests.cli.conftest import GROUP, PLURAL, VERSION


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return cli.init(tmp_path, "scores")


def printed(project: Path, *options: str) -> list[dict[str, Any]]:
    """The documents ``channelworks manifest`` prints."""
    done = cli.run("manifest", *options, cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# RealtimeApp ")
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def manifest(project: Path, *options: str) -> dict[str, Any]:
    """The RealtimeApp ``channelworks manifest`` prints (its last document)."""
    document = printed(project, *options)[-1]
    assert document["kind"] == "RealtimeApp"
    return document


def dry_run_create(
    api: kubernetes.client.ApiClient, namespace: str, document: dict[str, Any]
) -> dict[str, Any]:
    objects = kubernetes.client.CustomObjectsApi(api)
    created = objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, document, dry_run="All"
    )
    return cast(dict[str, Any], created)


@pytest.mark.usefixtures("realtimeapp_crd")
def test_the_default_manifest_is_accepted_and_defaulted(
    project: Path, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    document = manifest(project)
    assert document["metadata"] == {"name": "scores"}
    # What `channelworks build` tags by default, as every engine stores it; no registry has it,
    # so nodes use the copy loaded into them instead of pulling (:latest would mean Always).
    assert document["spec"]["image"] == "localhost/scores-worker:latest"
    assert document["spec"]["imagePullPolicy"] == "IfNotPresent"
    # Nothing secret in it: the operator makes the SECRET_KEY's Secret and sets the hosts.
    assert document["spec"]["django"] == {
        "settingsModule": "scores.settings",
        "env": [{"name": "DJANGO_DEBUG", "value": "false"}],
    }
    created = dry_run_create(kube_api, namespace, document)
    spec = created["spec"]
    assert spec["interface"]["replicas"] == 2
    assert spec["worker"]["autoscaling"]["minReplicas"] == 1
    assert spec["worker"]["autoscaling"]["maxReplicas"] == 10
    assert spec["channelLayer"]["redis"]["mode"] == "cluster"
    assert spec["channelLayer"]["capacity"] == 100  # filled in by the CRD's defaults
    objects = kubernetes.client.CustomObjectsApi(kube_api)
    listed = cast(
        dict[str, Any], objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    )
    assert listed["items"] == []  # a dry run: nothing was stored


@pytest.mark.usefixtures("realtimeapp_crd")
def test_every_option_ends_up_in_an_accepted_app(
    project: Path, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    document = manifest(
        project, "--name", "scores-live", "-n", namespace,
        "--image", "registry.example/scores-worker:1.4", "--pull-policy", "IfNotPresent",
        "--routing", "scores.routing.channel_routing", "--interface-replicas", "3",
        "--min-workers", "0", "--max-workers", "40", "--concurrency", "64",
        "--layer", "external", "--redis-url", "rediss+cluster://redis.example:6380",
        "--redis-password-secret", "scores-redis", "--secret-key-secret", "scores-key",
        "--host", "scores.example.com", "--host", ".scores.example",
    )  # fmt: skip
    created = dry_run_create(kube_api, namespace, document)
    assert created["metadata"]["name"] == "scores-live"
    assert created["metadata"]["namespace"] == namespace
    spec = created["spec"]
    assert spec["image"] == "registry.example/scores-worker:1.4"
    assert spec["imagePullPolicy"] == "IfNotPresent"
    service = f"scores-live-interface.{namespace}"
    assert spec["django"]["env"] == [
        {"name": "DJANGO_DEBUG", "value": "false"},
        {
            "name": "DJANGO_ALLOWED_HOSTS",
            "value": f"scores-live-interface,{service},{service}.svc,"
            f"{service}.svc.cluster.local,scores.example.com,.scores.example",
        },
        {"name": "CHANNELWORKS_ROUTING", "value": "scores.routing.channel_routing"},
    ]
    assert spec["django"]["secretKeySecretRef"] == {
        "name": "scores-key",
        "key": "DJANGO_SECRET_KEY",
    }
    assert "envFrom" not in spec["django"]
    assert spec["interface"]["replicas"] == 3
    assert spec["worker"]["concurrency"] == 64
    assert spec["worker"]["autoscaling"]["minReplicas"] == 0
    assert spec["worker"]["autoscaling"]["maxReplicas"] == 40
    assert spec["channelLayer"]["redis"] == {
        "mode": "external",
        "url": "rediss+cluster://redis.example:6380",
        "passwordSecretRef": {"name": "scores-redis", "key": "password"},
    }
    standalone = manifest(project, "--layer", "standalone")
    assert dry_run_create(kube_api, namespace, standalone)["spec"]["channelLayer"]["redis"] == {
        "mode": "standalone"
    }


REFUSED = [
    (("--name", "a" * 47), "at most 46 characters"),
    (("--name", "Scores"), "lowercase letters"),
    (("--min-workers", "5", "--max-workers", "2"), "must not be greater than --max-workers"),
    (("--interface-replicas", "1001"), "--interface-replicas must be between 0 and 1000"),
    (("--concurrency", "0"), "--concurrency must be between 1 and 1024"),
    (("--layer", "external"), "--layer external needs --redis-url"),
    (("--redis-url", "redis://x:6379"), "only used with --layer external"),
    (("--host", "Chat.Example"), "--host 'Chat.Example' is not a host name"),
]


def test_the_manifest_holds_no_secret_and_leaves_the_hosts_to_the_operator(project: Path) -> None:
    documents = printed(project, "-n", "demo")
    assert [document["kind"] for document in documents] == ["RealtimeApp"]
    django = documents[0]["spec"]["django"]
    assert "secretKeySecretRef" not in django and "envFrom" not in django
    assert [variable["name"] for variable in django["env"]] == ["DJANGO_DEBUG"]
    done = cli.run("manifest", "-n", "demo", cwd=project)
    assert "the operator makes the Secret scores-secret-key" in done.stdout


@pytest.mark.parametrize(("options", "message"), REFUSED)
def test_values_out_of_the_crds_limits_are_refused(
    project: Path, options: tuple[str, ...], message: str
) -> None:
    done = cli.run("manifest", *options, cwd=project)
    assert done.returncode == 2
    assert message in done.stderr and done.stdout == ""


@pytest.mark.usefixtures("realtimeapp_crd")
def test_the_api_server_refuses_what_the_command_refuses(
    project: Path, kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    """The command's limits are the CRD's: the same values, sent as they are, are refused."""
    valid = manifest(project)
    changes: dict[str, tuple[str, dict[str, Any]]] = {
        "long name": ("metadata", {"name": "a" * 47}),
        "min over max": ("spec.worker.autoscaling", {"minReplicas": 5, "maxReplicas": 2}),
        "replicas": ("spec.interface", {"replicas": 1001}),
        "concurrency": ("spec.worker", {"concurrency": 0}),
        "external without url": ("spec.channelLayer.redis", {"mode": "external"}),
    }
    for what, (where, values) in changes.items():
        document = copy.deepcopy(valid)
        part = document
        for key in where.split("."):
            part = part[key]
        part.update(values)
        with pytest.raises(kubernetes.client.ApiException) as refused:
            dry_run_create(kube_api, namespace, document)
        assert refused.value.status == 422, what
