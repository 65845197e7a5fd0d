"""The chart against a real kube-apiserver (the operator tests' control plane, see
docs/testing-control-plane.md): a server-side dry-run install under every values file, and a
real install whose ServiceAccount gets exactly the rights the operator needs, where it needs them.

The chart tests start a control plane of their own rather than share the session one: they
install cluster-scoped objects (ClusterRoles, the Prometheus Operator's CRDs) that would change
what the operator's tests see (the operator makes ServiceMonitors when their CRD exists).
"""

from __future__ import annotations

import re
import secrets
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from channelworks_operator import rbac
from tests.chart import prometheus_operator
from tests.chart.conftest import values_file
from tests.chart.helm import CHART, CRD_FILE, Helm, one, values_files
from tests.support.control_plane import ControlPlane
from tests.support.eventually import eventually

ESTABLISH_TIMEOUT = 60.0
INSTALL_TIMEOUT = "120s"
client = kubernetes.client


def _apply_crd(
    own_control_plane: ControlPlane, own_kube_api: kubernetes.client.ApiClient, path: Path
) -> None:
    own_control_plane.kubectl(
        "apply", "--server-side", "--field-manager=chart-tests", "-f", str(path)
    )
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    extensions = client.ApiextensionsV1Api(own_kube_api)

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    eventually(established, timeout=ESTABLISH_TIMEOUT, interval=0.2, message=f"{name} Established")


@pytest.fixture(scope="module")
def crds(
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The RealtimeApp CRD (crds/ of the chart) and the Prometheus Operator's, Established."""
    _apply_crd(own_control_plane, own_kube_api, CRD_FILE)
    try:
        monitoring = prometheus_operator.crds()
    except prometheus_operator.Unavailable as error:
        pytest.skip(str(error))
    directory = tmp_path_factory.mktemp("crds")
    for kind, document in monitoring.items():
        path = directory / f"{kind}.yaml"
        path.write_text(yaml.safe_dump(document))
        _apply_crd(own_control_plane, own_kube_api, path)


def _namespace(own_kube_api: kubernetes.client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(own_kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def _ensure_namespace(own_kube_api: kubernetes.client.ApiClient, name: str) -> None:
    core = client.CoreV1Api(own_kube_api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except client.ApiException as error:
        if error.status != 409:
            raise


def _release() -> str:
    return f"cw{secrets.token_hex(3)}"


@pytest.mark.parametrize(
    "values", [None, *values_files()], ids=["defaults", *(p.stem for p in values_files())]
)
def test_server_side_dry_run_install_succeeds(
    helm: Helm,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    crds: None,
    values: Path | None,
) -> None:
    namespace = _namespace(own_kube_api, "chart-dry-run")
    _ensure_namespace(own_kube_api, "demo")  # watch-namespace.yaml watches it
    files = ["--values", str(values)] if values is not None else []
    release = _release()
    done = helm.run(
        "install", release, str(CHART), "--namespace", namespace, "--dry-run=server",
        *files, env=own_control_plane.environ(),
    )  # fmt: skip
    assert "STATUS: pending-install" in done.stdout
    assert "Create your first app" in done.stdout, "NOTES.txt is shown"
    # helm validates against the server's OpenAPI; the API server itself must also admit every
    # object (admission, RBAC escalation checks, CRD schemas of ServiceMonitor/PrometheusRule).
    rendered = helm.template_text(
        [values] if values is not None else [], release=release, namespace=namespace
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as manifest:
        manifest.write(rendered)
        manifest.flush()
        applied = own_control_plane.kubectl(
            # Every namespaced object names its namespace (the watched one may differ).
            "apply", "--server-side", "--dry-run=server", "--field-manager=helm",
            "-f", manifest.name,
        )  # fmt: skip
    assert "serverside-applied (server dry run)" in applied.stdout, applied.stdout


def _can(own_kube_api: kubernetes.client.ApiClient, user: str, namespace: str | None, group: str,
         resource: str, verb: str) -> bool:  # fmt: skip
    attributes = client.V1ResourceAttributes(
        group=group, resource=resource.split("/")[0], verb=verb, namespace=namespace,
        subresource=resource.split("/")[1] if "/" in resource else None,
    )  # fmt: skip
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=user, resource_attributes=attributes)
    )
    answer = client.AuthorizationV1Api(own_kube_api).create_subject_access_review(review)
    return bool(answer.status and answer.status.allowed)


def _expected(rules: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    yield group, resource, verb


def _install(
    helm: Helm, own_control_plane: ControlPlane, release: str, namespace: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return helm.run(
        "install", release, str(CHART), "--namespace", namespace, "--wait",
        "--timeout", INSTALL_TIMEOUT, *args, env=own_control_plane.environ(),
    )  # fmt: skip


def _uninstall(helm: Helm, own_control_plane: ControlPlane, release: str, namespace: str) -> None:
    helm.run(
        "uninstall", release, "--namespace", namespace, "--wait", "--timeout", INSTALL_TIMEOUT,
        env=own_control_plane.environ(),
    )  # fmt: skip


def test_installed_operator_gets_its_rights_everywhere_and_uninstall_removes_them(
    helm: Helm,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    crds: None,
) -> None:
    namespace = _namespace(own_kube_api, "chart-install")
    other = _namespace(own_kube_api, "chart-apps")
    release = _release()
    _install(helm, own_control_plane, release, namespace)
    deployment = client.AppsV1Api(own_kube_api).read_namespaced_deployment(
        f"{release}-channelworks", namespace
    )
    assert deployment.status is not None
    assert deployment.status.available_replicas == 2, "helm --wait saw both replicas available"
    user = f"system:serviceaccount:{namespace}:{release}-channelworks"
    missing = [
        f"{verb} {group or 'core'}/{resource} in {other}"
        for group, resource, verb in _expected(rbac.cluster_rules())
        if not _can(own_kube_api, user, other, group, resource, verb)
    ]
    missing += [
        f"{verb} {group}/{resource} in {namespace}"
        for group, resource, verb in _expected(rbac.leader_election_rules())
        if not _can(own_kube_api, user, namespace, group, resource, verb)
    ]
    assert not missing, f"the operator's ServiceAccount may not: {missing}"
    # Every namespace's Secrets: only by name, and only to read, make or patch one (operating.md).
    for verb in ("list", "watch", "update", "delete", "deletecollection"):
        assert not _can(own_kube_api, user, other, "", "secrets", verb), f"{verb} secrets"
        assert not _can(own_kube_api, user, None, "", "secrets", verb), f"{verb} all secrets"
    assert not _can(own_kube_api, user, other, "coordination.k8s.io", "leases", "create")

    _uninstall(helm, own_control_plane, release, namespace)
    assert not _can(own_kube_api, user, other, "channelworks.dev", "realtimeapps", "watch")
    rbac_api = client.RbacAuthorizationV1Api(own_kube_api)
    left = [
        role.metadata.name if role.metadata else "?"
        for role in rbac_api.list_cluster_role(
            label_selector=f"app.kubernetes.io/instance={release}"
        ).items
    ]
    assert not left, f"ClusterRoles left after uninstall: {left}"
    pods = client.CoreV1Api(own_kube_api).list_namespaced_pod(namespace).items
    assert not [pod for pod in pods if pod.metadata and not pod.metadata.deletion_timestamp]


@pytest.mark.parametrize("watched_count", [1, 2], ids=["one-namespace", "two-namespaces"])
def test_a_watch_namespace_install_has_rights_there_only(
    helm: Helm,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    crds: None,
    watched_count: int,
) -> None:
    """watchNamespace names one namespace or several (comma-separated): the operator's rights,
    Secrets included, are there and nowhere else."""
    namespace = _namespace(own_kube_api, "chart-scoped")
    watched = [_namespace(own_kube_api, "chart-watched") for _ in range(watched_count)]
    elsewhere = _namespace(own_kube_api, "chart-elsewhere")
    release = _release()
    listed = "\\,".join(watched)  # --set takes an unescaped comma for the next key
    installed = _install(
        helm, own_control_plane, release, namespace,
        "--values", str(values_file("watch-namespace")), "--set", f"watchNamespace={listed}",
    )  # fmt: skip
    user = f"system:serviceaccount:{namespace}:{release}-channelworks"
    try:
        notes = _notes(installed.stdout)
        if watched_count == 1:
            assert f"reconciles RealtimeApps in namespace {watched[0]} only" in notes
        else:
            assert f"reconciles RealtimeApps in namespaces {', '.join(watched)} only" in notes
        assert f"kubectl -n {watched[0]} get rtapp chat -w" in notes
        for group, resource, verb in _expected(rbac.cluster_rules()):
            for each in watched:
                assert _can(own_kube_api, user, each, group, resource, verb), (
                    each, group, resource, verb,
                )  # fmt: skip
            assert not _can(own_kube_api, user, elsewhere, group, resource, verb), (
                group,
                resource,
                verb,
            )
        assert not _can(own_kube_api, user, None, "", "secrets", "get"), "no cluster-wide rights"
        assert _can(own_kube_api, user, namespace, "coordination.k8s.io", "leases", "update")
        deployment = client.AppsV1Api(own_kube_api).read_namespaced_deployment(
            f"{release}-channelworks", namespace
        )
        pod = own_kube_api.sanitize_for_serialization(deployment)["spec"]["template"]["spec"]  # type: ignore[no-untyped-call]
        args = pod["containers"][0]["args"]
        assert f"--namespaces={','.join(watched)}" in args, args
    finally:
        _uninstall(helm, own_control_plane, release, namespace)


def test_aggregated_roles_let_namespace_editors_manage_apps(
    helm: Helm,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    crds: None,
) -> None:
    namespace = _namespace(own_kube_api, "chart-users")
    apps = _namespace(own_kube_api, "chart-team")
    release = _release()
    user = "alice"
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="alice-edit"),
        role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"
        ),
        subjects=[
            client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")
        ],
    )
    client.RbacAuthorizationV1Api(own_kube_api).create_namespaced_role_binding(apps, binding)
    _install(helm, own_control_plane, release, namespace, "--set", "replicaCount=1")
    try:

        def alice_may_create_apps() -> bool:
            return _can(own_kube_api, user, apps, "channelworks.dev", "realtimeapps", "create")

        # The controller-manager's ClusterRole aggregation controller copies the rules over.
        eventually(alice_may_create_apps, timeout=30, interval=0.2, message="edit aggregated")
        assert not _can(own_kube_api, user, namespace, "channelworks.dev", "realtimeapps", "create")
    finally:
        _uninstall(helm, own_control_plane, release, namespace)


def _first_app_from_notes(notes: str) -> dict[str, Any]:
    """The RealtimeApp the NOTES tell a user to apply (between ``<<'YAML'`` and ``YAML``)."""
    lines = notes.splitlines()
    start = next(i for i, line in enumerate(lines) if "<<'YAML'" in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "YAML")
    app: dict[str, Any] = yaml.safe_load(textwrap.dedent("\n".join(lines[start:end])))
    return app


def test_the_first_app_in_the_notes_is_accepted_by_the_api_server(
    helm: Helm,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    crds: None,
) -> None:
    namespace = _namespace(own_kube_api, "chart-notes")
    watched = _namespace(own_kube_api, "chart-first-app")
    done = helm.run(
        "install", _release(), str(CHART), "--namespace", namespace, "--dry-run=server",
        "--set", f"watchNamespace={watched}", env=own_control_plane.environ(),
    )  # fmt: skip
    app = _first_app_from_notes(done.stdout)
    assert app["kind"] == "RealtimeApp" and app["metadata"]["namespace"] == watched
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as manifest:
        manifest.write(yaml.safe_dump(app))
        manifest.flush()
        applied = own_control_plane.kubectl("apply", "--dry-run=server", "-f", manifest.name)
    assert "realtimeapp.channelworks.dev/chat created (server dry run)" in applied.stdout
    assert f"kubectl -n {watched} get rtapp chat" in done.stdout


_POD_SELECTOR = re.compile(r"get pods -l (\S+)")
_MONITORING_LINE = re.compile(
    r"^\s+- (?P<kind>ServiceMonitor|PrometheusRule|ConfigMap) (?P<name>\S+) "
)


def _notes(output: str) -> str:
    assert "NOTES:" in output, "helm prints the NOTES after an install"
    return output.split("NOTES:", 1)[1]


@pytest.mark.parametrize(
    "values", [None, *values_files()], ids=["defaults", *(p.stem for p in values_files())]
)
def test_the_notes_name_what_this_install_made(
    helm: Helm,
    own_control_plane: ControlPlane,
    own_kube_api: kubernetes.client.ApiClient,
    crds: None,
    values: Path | None,
) -> None:
    """Every command and object the NOTES mention matches the objects of this install: the
    release and namespace, the watched namespace, the replica count, a pod selector that
    selects the operator's pods, and each monitoring object by kind and name."""
    namespace = _namespace(own_kube_api, "chart-notes")
    _ensure_namespace(own_kube_api, "demo")
    files = [values] if values is not None else []
    release = _release()
    done = helm.run(
        "install", release, str(CHART), "--namespace", namespace, "--dry-run=server",
        *(arg for path in files for arg in ("--values", str(path))),
        env=own_control_plane.environ(),
    )  # fmt: skip
    notes = _notes(done.stdout)
    rendered = helm.template(files, release=release, namespace=namespace)
    deployment = one(rendered, "Deployment")
    settings = yaml.safe_load(values.read_text()) if values is not None else {}

    assert f"installed as release {release} in namespace {namespace}." in notes
    watched = settings.get("watchNamespace")
    if watched:
        assert f"reconciles RealtimeApps in namespace {watched} only" in notes
        assert f"kubectl -n {watched} get rtapp chat -w" in notes
    else:
        assert "reconciles RealtimeApps in every namespace" in notes
    assert f"({deployment['spec']['replicas']} replica(s);" in notes
    assert f"helm test {release} -n {namespace}" in notes

    (selector,) = _POD_SELECTOR.findall(notes)
    wanted = dict(item.split("=", 1) for item in selector.split(","))
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert wanted.items() <= pod_labels.items(), (selector, pod_labels)

    mentioned = {
        (match["kind"], match["name"])
        for line in notes.splitlines()
        if (match := _MONITORING_LINE.match(line))
    }
    monitoring = {
        (m["kind"], m["metadata"]["name"])
        for m in rendered
        if m["kind"] in {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    }
    assert mentioned == monitoring, "the NOTES list exactly the monitoring objects installed"
    assert ("Monitoring:" in notes) == bool(monitoring)
