"""The chat example on a real cluster, as a user meets it: the chart installed and its operator
running as the chart says, the chat recipe (PostgreSQL, the RealtimeApp migrated by the operator)
Ready, two people logging in over HTTP and chatting over WebSockets across both interface pods, a
staff room closed to bob; and, last of the whole suite, nothing of ours left once the app is
deleted and the chart uninstalled."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from e2e.chat_clients import ChatAddress, interface_pods, one_socket_on_each_pod
from e2e.cluster import App, Cluster, Images, Release, wait_until
from tests.dataplane.clients import JsonSocket, join, login, open_chat

GONE_TIMEOUT = 180.0
STATUS_TIMEOUT = 60.0


def test_the_chart_runs_its_operator_with_its_image_and_service_account(
    cluster: Cluster, release: Release, images: Images
) -> None:
    assert "STATUS: deployed" in release.notes
    selector = f"app.kubernetes.io/instance={release.name}"
    (account,) = cluster.names("serviceaccounts", release.namespace, selector)
    operator_pods = cluster.items(
        "pods", release.namespace, f"{selector},app.kubernetes.io/component=operator"
    )
    assert len(operator_pods) == 2, [pod["metadata"]["name"] for pod in operator_pods]
    for pod in operator_pods:
        (container,) = pod["spec"]["containers"]
        assert container["image"] == images.operator
        assert pod["spec"]["serviceAccountName"] == account.removeprefix("serviceaccount/")
        (running,) = pod["status"]["containerStatuses"]
        assert running["ready"] and "running" in running["state"], running
        assert running["imageID"], "the image the node runs"
    tested = cluster.helm("test", release.name, "-n", release.namespace, "--timeout", "120s")
    assert re.search(r"Phase:\s+Succeeded", tested), f"helm test: {tested}"


def test_the_chat_app_is_ready_and_kubectl_shows_it(cluster: Cluster, app: App) -> None:
    status = cluster.get("rtapp", app.name, app.namespace)["status"]
    assert status["phase"] == "Ready"
    assert status["interface"]["ready"] == "2/2"
    assert status["channelLayer"]["readyNodes"] == 1
    assert len(interface_pods(cluster, app)) == 2

    def table() -> tuple[bool, list[list[str]]]:
        lines = cluster.kubectl("get", "rtapp", "-n", app.namespace).stdout.splitlines()
        rows = [line.split() for line in lines]
        return rows[1][:5] == ["chat", "True", "2/2", "1/1", "0"], rows

    rows = wait_until("kubectl get rtapp showing chat at rest", table, STATUS_TIMEOUT)
    assert rows[0] == ["NAME", "READY", "INTERFACE", "WORKERS", "QUEUE", "AGE"]


def _said(text: str) -> Any:
    return lambda frame: frame.get("message") == text


async def _chat_across_both_interface_pods(address: ChatAddress, pod_ips: list[str]) -> None:
    alice_session = await login(address.base, "alice")  # HTTP, through the Service
    bob_session = await login(address.base, "bob")
    bobs = await one_socket_on_each_pod(address, bob_session, pod_ips)
    alice, hello = await open_chat(address.ws, alice_session)
    sockets: list[JsonSocket] = [alice, *bobs.values()]
    try:
        assert hello["hello"] == "alice" and hello["staff"] is True
        assert "staff" in [room["slug"] for room in hello["rooms"]]
        for socket in sockets:
            await join(socket, "lobby")

        # alice's words reach bob on each pod; bob's, said on one pod, reach alice.
        text = f"hello from alice {time.time_ns()}"
        await alice.send({"command": "send", "room": "lobby", "message": text})
        for socket in sockets:
            said, _ = await socket.recv_until(_said(text), 30)
            assert said["user"] == "alice" and said["room"] == "lobby"
        first_bob = next(iter(bobs.values()))
        reply = f"hello from bob {time.time_ns()}"
        await first_bob.send({"command": "send", "room": "lobby", "message": reply})
        said, _ = await alice.recv_until(_said(reply), 30)
        assert said["user"] == "bob"

        # The staff room: closed to bob on either pod, open to alice.
        for bob in bobs.values():
            await bob.send({"command": "join", "room": "staff"})
            refused, _ = await bob.recv_until(lambda f: "error" in f or "joined" in f, 30)
            assert refused == {"error": "this room is for staff only", "room": "staff"}
        joined = await join(alice, "staff")
        assert joined["title"] == "Staff room"
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))


def test_two_users_log_in_and_chat_across_both_interface_pods(cluster: Cluster, app: App) -> None:
    pod_ips = [pod["status"]["podIP"] for pod in interface_pods(cluster, app)]
    assert len(pod_ips) == 2
    asyncio.run(_chat_across_both_interface_pods(ChatAddress.of(app), pod_ips))


def _left(cluster: Cluster, kinds: str, namespace: str | None, selector: str) -> list[str]:
    return cluster.names(kinds, namespace, selector)


@pytest.mark.last
def test_deleting_the_app_and_uninstalling_the_chart_leave_nothing_of_ours(
    cluster: Cluster, release: Release, app: App
) -> None:
    """After ``kubectl delete rtapp``: no object labelled as the app's (Deployments,
    StatefulSets, Services, Secrets, ConfigMaps, Pods, PDBs, NetworkPolicies, HPAs,
    PodMonitors/ServiceMonitors, PVCs, migration Jobs) and no object owned by it. After
    ``helm uninstall``: none of the release's objects (Deployments, Pods, Services,
    ServiceAccounts, ConfigMaps, Secrets, Roles, RoleBindings, PDBs, ServiceMonitors,
    PrometheusRules, ClusterRoles, ClusterRoleBindings) and no Lease in its namespace. The CRD
    stays, as docs/install.md says."""
    cluster.kubectl("delete", "rtapp", app.name, "-n", app.namespace, "--wait=true", timeout=300)
    app_kinds = (
        "deployments,statefulsets,services,secrets,configmaps,pods,pdb,networkpolicies,hpa,"
        "podmonitors,servicemonitors,pvc,jobs"
    )
    selector = f"app.kubernetes.io/instance={app.name}"

    def app_gone() -> tuple[bool, dict[str, Any]]:
        labelled = _left(cluster, app_kinds, app.namespace, selector)
        owned = [
            f"{item['kind']}/{item['metadata']['name']}"
            for item in cluster.items(app_kinds, app.namespace)
            if any(
                ref.get("kind") == "RealtimeApp" and ref.get("name") == app.name
                for ref in item["metadata"].get("ownerReferences") or []
            )
        ]
        return not labelled and not owned, {"labelled": labelled, "owned": owned}

    wait_until("the app's objects deleted", app_gone, GONE_TIMEOUT)

    cluster.helm("uninstall", release.name, "-n", release.namespace, "--wait", "--timeout", "180s")
    release_selector = f"app.kubernetes.io/instance={release.name}"
    namespaced = (
        "deployments,pods,services,serviceaccounts,configmaps,secrets,roles,rolebindings,pdb,"
        "servicemonitors,prometheusrules"
    )

    def release_gone() -> tuple[bool, dict[str, Any]]:
        left = {
            "namespaced": _left(cluster, namespaced, release.namespace, release_selector),
            "cluster": _left(cluster, "clusterroles,clusterrolebindings", None, release_selector),
            "leases": cluster.kubectl(
                "get", "leases", "-n", release.namespace, "-o", "name"
            ).stdout.split(),
        }
        return not any(left.values()), left

    wait_until("the release's objects deleted", release_gone, GONE_TIMEOUT)
    cluster.kubectl("get", "crd", "realtimeapps.channelworks.dev")  # kept on purpose
