"""The chat example once more, on the channel layer a production cluster would run: a second
RealtimeApp ``chat-cluster`` with a managed Redis Cluster (``mode: cluster``: three masters, one
replica each, pod IPs announced, data on PersistentVolumeClaims), shared by the failover,
NetworkPolicy, autoscaling and Prometheus tests. Clients reach it as the suite's other tests do
(e2e/chat_clients.py: the interface Service's cluster DNS name).

It runs in the namespace of the suite's chat app (e2e/conftest.py's ``app``), from the same
manifest, so it uses the same images and database; requests are small, so six Redis pods, two
interface pods and up to three workers fit a 2-core node beside the other app.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.cluster import App, Cluster, wait_until

NAME = "chat-cluster"
SHARDS, REPLICAS_PER_SHARD = 3, 1
REDIS_NODES = SHARDS * (1 + REPLICAS_PER_SHARD)
MIN_WORKERS, MAX_WORKERS = 1, 3
INTERFACE_REPLICAS = 2
INTERFACE_PORT = 8000
READY_TIMEOUT = 600.0
POLL_SECONDS = 1.0
TARGET_QUEUE_DEPTH = 20
AUTOSCALING: dict[str, Any] = {
    "enabled": True,
    "mode": "builtin",
    "minReplicas": MIN_WORKERS,
    "maxReplicas": MAX_WORKERS,
    # Low, so the flood's few hundred waiting messages scale the workers out.
    "targetQueueDepth": TARGET_QUEUE_DEPTH,
    "targetOldestAgeSeconds": 5,
    "scaleDownStabilizationSeconds": 20,
    "pollIntervalSeconds": 3,
}


def cluster_manifest(chat: dict[str, Any], storage_class: str | None) -> dict[str, Any]:
    """The suite's chat manifest as ``chat-cluster``: Redis Cluster (its claims of
    ``storage_class``, else the default class), small requests, a 5 s scrape interval, fast
    autoscaling, and any Host (clients use the ClusterIP)."""
    manifest = copy.deepcopy(chat)
    manifest["metadata"] = {"name": NAME, "labels": dict(chat["metadata"].get("labels") or {})}
    spec = manifest["spec"]
    spec["interface"].update(
        replicas=INTERFACE_REPLICAS,
        resources={"requests": {"cpu": "25m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    )
    spec["worker"].update(
        autoscaling=dict(AUTOSCALING),
        resources={"requests": {"cpu": "25m", "memory": "96Mi"}, "limits": {"memory": "384Mi"}},
    )
    spec["channelLayer"] = {
        "capacity": 1000,
        # Long enough that messages waiting for absent workers outlive the alert's threshold.
        "expiry": 300,
        "redis": {
            "mode": "cluster",
            "shards": SHARDS,
            "replicasPerShard": REPLICAS_PER_SHARD,
            "resources": {
                "requests": {"cpu": "10m", "memory": "24Mi"},
                "limits": {"memory": "128Mi"},
            },
            "storage": {
                "size": "64Mi",
                **({"storageClassName": storage_class} if storage_class else {}),
            },
        },
    }
    spec["monitoring"] = {"enabled": True, "kind": "PodMonitor", "interval": "5s"}
    return manifest


def status(cluster: Cluster, app: App) -> dict[str, Any]:
    found: dict[str, Any] = cluster.get("rtapp", app.name, app.namespace).get("status") or {}
    return found


def pods(cluster: Cluster, app: App, component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={app.name},app.kubernetes.io/component={component}"
    listed = cluster.kubectl("get", "pods", "-n", app.namespace, "-l", selector, "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    deleting = pod["metadata"].get("deletionTimestamp") is not None
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return ready and not deleting


@pytest.fixture(scope="session")
def cluster_app(cluster: Cluster, app: App, monitoring_crds: None) -> Iterator[App]:
    """``chat-cluster`` applied beside the suite's chat app, Ready with all six Redis nodes in
    the cluster. The monitoring CRDs come first, so the operator makes its PodMonitor."""
    # e2e/node.sh names the node's provisioner's class; another cluster uses its default class.
    manifest = cluster_manifest(app.manifest, os.environ.get("CHANNELWORKS_NODE_STORAGE_CLASS"))
    made = App(app.namespace, NAME, manifest)
    cluster.kubectl("apply", "-n", app.namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    try:

        def ready() -> tuple[bool, Any]:
            found = status(cluster, made)
            layer = found.get("channelLayer", {})
            is_up = found.get("phase") == "Ready" and layer.get("readyNodes") == REDIS_NODES
            return is_up, {key: found.get(key) for key in ("phase", "channelLayer", "conditions")}

        wait_until(f"RealtimeApp {NAME} Ready with {REDIS_NODES} Redis nodes", ready, READY_TIMEOUT)
        yield made
    finally:
        cluster.kubectl("delete", "rtapp", NAME, "-n", app.namespace, "--ignore-not-found",
                        "--wait=false")  # fmt: skip
