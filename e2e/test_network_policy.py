"""Test 7: the NetworkPolicy the operator puts in front of an app's Redis, enforced on the node.
A pod that is not the app's cannot open a connection to any of its Redis pods, though it reaches
the app's other pods; the app's own pods reach Redis."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.cluster import App, Cluster, wait_until
from e2e.fixtures_chat import is_ready, pods

pytestmark = pytest.mark.timeout(600)
REDIS_PORT = 6379
METRICS_PORT = 9100
POLICY_TIMEOUT = 60.0
# Connects, sends a PING and prints what came back (a Redis answers, with a password set,
# "-NOAUTH ..."), or the error: "answered b'...'" / "blocked TimeoutError ...".
PROBE = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
        s.settimeout(3)
        s.sendall(b"PING\\r\\n" if sys.argv[2] == "6379" else b"GET /healthz HTTP/1.0\\r\\n\\r\\n")
        print("answered", s.recv(64))
except OSError as error:
    print("blocked", type(error).__name__, error)
"""


def _probe(cluster: Cluster, namespace: str, pod: str, address: str, port: int) -> str:
    done = cluster.kubectl(
        "exec", "-n", namespace, pod, "--", "python3", "-c", PROBE, address, str(port), timeout=60
    )
    return done.stdout.strip()


def _outsider(image: str, name: str) -> dict[str, Any]:
    """A plain pod in the app's namespace that belongs to no app, with a Python to probe from."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "network-probe"}},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", "import time; time.sleep(3600)"],
                    "resources": {"requests": {"cpu": "5m", "memory": "32Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def outsider(cluster: Cluster, cluster_app: App) -> Iterator[str]:
    name = f"network-probe-{secrets.token_hex(3)}"
    manifest = _outsider(cluster_app.manifest["spec"]["image"], name)
    cluster.kubectl("apply", "-n", cluster_app.namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    try:
        cluster.kubectl("wait", "-n", cluster_app.namespace, f"pod/{name}",
                        "--for=condition=Ready", "--timeout=180s", timeout=200)  # fmt: skip
        yield name
    finally:
        cluster.kubectl("delete", "pod", name, "-n", cluster_app.namespace, "--wait=false",
                        "--ignore-not-found")  # fmt: skip


def _ip(pod: dict[str, Any]) -> str:
    address: str = pod["status"]["podIP"]
    return address


def test_the_app_has_a_policy_for_its_redis(cluster: Cluster, cluster_app: App) -> None:
    policy = cluster.get("networkpolicy", f"{cluster_app.name}-redis", cluster_app.namespace)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected["app.kubernetes.io/component"] == "channel-layer", selected


def test_a_pod_outside_the_app_cannot_connect_to_its_redis(
    cluster: Cluster, cluster_app: App, outsider: str
) -> None:
    namespace = cluster_app.namespace
    redis = [pod for pod in pods(cluster, cluster_app, "channel-layer") if is_ready(pod)]
    assert len(redis) == 6, [pod["metadata"]["name"] for pod in redis]
    # The outsider's network works: it reaches a worker of the app on its metrics port.
    worker = next(pod for pod in pods(cluster, cluster_app, "worker") if is_ready(pod))
    reached = _probe(cluster, namespace, outsider, _ip(worker), METRICS_PORT)
    assert reached.startswith("answered"), reached
    seen = {}
    for pod in redis:
        seen[pod["metadata"]["name"]] = _probe(cluster, namespace, outsider, _ip(pod), REDIS_PORT)
    print(f"\nNETWORK POLICY: from {outsider}: {json.dumps(seen, indent=1)}")
    assert all(answer.startswith("blocked") for answer in seen.values()), seen


def test_the_apps_own_pods_reach_its_redis(cluster: Cluster, cluster_app: App) -> None:
    namespace = cluster_app.namespace
    redis = [pod for pod in pods(cluster, cluster_app, "channel-layer") if is_ready(pod)]
    for component in ("worker", "interface"):
        member = next(pod for pod in pods(cluster, cluster_app, component) if is_ready(pod))
        for pod in redis:

            def answers(
                member: dict[str, Any] = member, pod: dict[str, Any] = pod
            ) -> tuple[bool, str]:
                found = _probe(cluster, namespace, member["metadata"]["name"], _ip(pod), REDIS_PORT)
                return found.startswith("answered") and "NOAUTH" in found, found

            wait_until(f"{member['metadata']['name']} reaching {pod['metadata']['name']}",
                     answers, POLICY_TIMEOUT)  # fmt: skip
