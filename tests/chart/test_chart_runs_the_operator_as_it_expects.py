"""The Deployment and RBAC the chart renders are the ones the operator's own code expects: its
settings parser accepts the args and env, the probes hit what it serves, the ports are the ones
it listens on, and the rules are exactly those of ``channelworks_operator.rbac``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import tomllib
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import prometheus_client
import pytest

from channelworks_operator import config as operator_config
from channelworks_operator import health, rbac
from channelworks_operator.metrics import Metrics
from tests.chart.conftest import values_file
from tests.chart.helm import NAMESPACE, RELEASE, ROOT, Helm, Manifest, find, one
from tests.chart.helm import operator_container as container_of

POD_NAME = "cw-channelworks-5d8f7c9b6d-x2x9q"
POD_UID = "0f8c6f1e-3d7e-4c1a-9a53-6f0d2b7c1e55"


def _environment(container: Manifest) -> dict[str, str]:
    """The container's env as the kubelet would set it (fieldRefs resolved)."""
    fields = {"metadata.name": POD_NAME, "metadata.namespace": NAMESPACE, "metadata.uid": POD_UID}
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def _settings(manifests: Sequence[Manifest]) -> operator_config.OperatorConfig:
    container = container_of(manifests)
    return operator_config.load(_environment(container), container["args"])


def _ports(container: Manifest) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container["ports"]}


def _normalised(rules: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, ...], ...]]:
    return sorted(
        (
            tuple(sorted(rule["apiGroups"])),
            tuple(sorted(rule["resources"])),
            tuple(sorted(rule["verbs"])),
        )
        for rule in rules
    )


def test_the_command_is_the_operators_console_script(rendered_default: list[Manifest]) -> None:
    project = tomllib.loads((ROOT / "operator" / "pyproject.toml").read_text())
    scripts = project["project"]["scripts"]
    command = container_of(rendered_default)["command"]
    assert command[0] in scripts
    assert scripts[command[0]] == "channelworks_operator.main:main"


def test_defaults_give_a_leader_elected_operator_over_every_namespace(
    rendered_default: list[Manifest],
) -> None:
    settings = _settings(rendered_default)
    deployment = one(rendered_default, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert settings.leader_election
    assert settings.leader_election_name == f"{RELEASE}-channelworks"
    assert settings.leader_election_namespace == NAMESPACE
    assert settings.identity == POD_NAME
    assert (settings.pod_name, settings.pod_uid) == (POD_NAME, POD_UID)  # the Lease's owner
    assert settings.clusterwide and settings.namespaces == ()
    assert settings.operator_namespace == NAMESPACE
    assert settings.retry_period_seconds < settings.renew_deadline_seconds
    assert settings.renew_deadline_seconds < settings.lease_duration_seconds
    assert settings.interface_image == "channelworks/interface:0.1.0"


def test_watch_namespace_reaches_the_operator(rendered_by_file: dict[str, list[Manifest]]) -> None:
    settings = _settings(rendered_by_file["watch-namespace"])
    assert settings.namespaces == ("demo",)
    assert not settings.clusterwide


def test_custom_values_reach_the_operator(rendered_by_file: dict[str, list[Manifest]]) -> None:
    manifests = rendered_by_file["custom-image-resources"]
    settings = _settings(manifests)
    container = container_of(manifests)
    assert container["image"] == "registry.example.com/platform/channelworks-operator:0.1.0-rc.1"
    assert container["imagePullPolicy"] == "Always"
    assert settings.interface_image == (
        "registry.example.com/platform/channelworks-interface:0.1.0-rc.1"
    )
    assert settings.redis_image == "registry.example.com/mirror/redis:7.4.2"
    assert (settings.log_level, settings.log_format) == ("DEBUG", "text")
    assert settings.stats_timeout_seconds == 3.0
    assert (settings.metrics_port, settings.health_port) == (9090, 9091)
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    pod = one(manifests, "Deployment")["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "channelworks-operator"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["metadata"]["annotations"] == {"example.com/owner": "platform"}
    assert "podAntiAffinity" not in pod["spec"]["affinity"], "affinity given replaces the default"


@pytest.mark.parametrize("values", ["defaults", "custom-image-resources"])
def test_ports_and_probes_are_the_ones_the_operator_serves(helm: Helm, values: str) -> None:
    manifests = helm.template([] if values == "defaults" else [values_file(values)])
    settings = _settings(manifests)
    container = container_of(manifests)
    ports = _ports(container)
    assert ports == {"metrics": settings.metrics_port, "health": settings.health_port}
    service = one(manifests, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "health", probe


@pytest.fixture(scope="module")
def health_endpoint() -> Iterator[str]:
    """The operator's real health server, as a standby replica serves it."""
    state = health.HealthState(role=health.STANDBY)
    server = health.servers(state, "127.0.0.1", 0, 0, prometheus_client.CollectorRegistry())[1]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_every_probe_path_answers_200_from_the_operators_health_server(
    rendered_default: list[Manifest], health_endpoint: str
) -> None:
    container = container_of(rendered_default)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        path = container[probe]["httpGet"]["path"]
        with urllib.request.urlopen(health_endpoint + path, timeout=5) as response:
            assert response.status == 200, f"{probe} {path}"


def test_pods_carry_the_labels_the_operator_lets_reach_redis(
    rendered_default: list[Manifest],
) -> None:
    settings = _settings(rendered_default)
    pod_labels = one(rendered_default, "Deployment")["spec"]["template"]["metadata"]["labels"]
    allowed = dict(settings.operator_pod_labels)
    assert allowed.items() <= pod_labels.items()
    assert allowed["app.kubernetes.io/instance"] == RELEASE, "one release's pods, not any"


def test_cluster_rules_are_exactly_the_operators(rendered_default: list[Manifest]) -> None:
    role = one(rendered_default, "ClusterRole", f"{RELEASE}-channelworks")
    assert _normalised(role["rules"]) == _normalised(rbac.cluster_rules())
    binding = one(rendered_default, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    account = one(rendered_default, "ServiceAccount")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]
    lease_role = one(rendered_default, "Role")
    assert lease_role["metadata"]["namespace"] == NAMESPACE
    assert _normalised(lease_role["rules"]) == _normalised(rbac.leader_election_rules())


def test_a_watched_namespace_gets_a_role_and_no_cluster_wide_rights(
    rendered_by_file: dict[str, list[Manifest]],
) -> None:
    manifests = rendered_by_file["watch-namespace"]
    assert not find(manifests, "ClusterRoleBinding")
    operator_roles = [
        role
        for role in find(manifests, "ClusterRole")
        if "rbac.authorization.k8s.io/aggregate-to-view" not in role["metadata"]["labels"]
        and "rbac.authorization.k8s.io/aggregate-to-edit" not in role["metadata"]["labels"]
    ]
    assert not operator_roles, "only the aggregated user roles may be cluster-wide"
    roles = {role["metadata"]["namespace"]: role for role in find(manifests, "Role")}
    assert _normalised(roles["demo"]["rules"]) == _normalised(rbac.cluster_rules())
    assert _normalised(roles[NAMESPACE]["rules"]) == _normalised(rbac.leader_election_rules())
    bindings = {b["metadata"]["namespace"]: b for b in find(manifests, "RoleBinding")}
    assert bindings["demo"]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": roles["demo"]["metadata"]["name"],
    }


def test_one_replica_without_leader_election_needs_no_lease(
    rendered_by_file: dict[str, list[Manifest]],
) -> None:
    manifests = rendered_by_file["single-replica"]
    settings = _settings(manifests)
    assert not settings.leader_election
    assert not find(manifests, "Role") and not find(manifests, "RoleBinding")
    assert not find(manifests, "PodDisruptionBudget"), "a PDB would block every drain"
    assert not find(manifests, "Pod"), "tests.enabled=false"


def test_rbac_create_false_renders_no_rbac(helm: Helm) -> None:
    manifests = helm.template(sets=["rbac.create=false"])
    rbac_kinds = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert not [m for m in manifests if m["kind"] in rbac_kinds]


@pytest.mark.parametrize("values", ["defaults", "custom-image-resources", "watch-namespace"])
def test_pods_run_hardened(helm: Helm, values: str) -> None:
    manifests = helm.template([] if values == "defaults" else [values_file(values)])
    specs = [one(manifests, "Deployment")["spec"]["template"]["spec"]]
    specs += [pod["spec"] for pod in find(manifests, "Pod")]
    assert len(specs) == 2, "the Deployment and the helm test pod"
    for spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "memory" in container["resources"]["limits"]


def test_the_helm_test_pod_asks_the_metrics_service(rendered_default: list[Manifest]) -> None:
    pod = one(rendered_default, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    service = one(rendered_default, "Service")
    url = pod["spec"]["containers"][0]["command"][-1]
    name, port = service["metadata"]["name"], service["spec"]["ports"][0]["port"]
    assert url == f"http://{name}.{NAMESPACE}.svc:{port}/metrics"
    assert (
        'channelworks_build_info{component="operator"' in pod["spec"]["containers"][0]["command"][2]
    )
    assert not service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_the_helm_test_script_passes_against_the_operators_metrics(
    rendered_default: list[Manifest],
) -> None:
    registry = prometheus_client.CollectorRegistry()
    Metrics(registry)
    server, thread = prometheus_client.start_http_server(0, "127.0.0.1", registry)
    try:
        command = one(rendered_default, "Pod")["spec"]["containers"][0]["command"]
        assert command[:2] == ["python3", "-c"]
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        done = subprocess.run(
            [sys.executable, "-c", command[2], url], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        assert "the operator answers" in done.stdout
    finally:
        server.shutdown()
        thread.join(5)
