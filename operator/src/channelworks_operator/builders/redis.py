"""The Redis the operator runs for an app: StatefulSet, headless Service, config, password
Secret and PDB (pure). Mode cluster runs shards x (1 + replicasPerShard) cluster-enabled nodes;
mode standalone one plain Redis. Forming the cluster is ``channelworks_operator.rediscluster``'s.
"""

from __future__ import annotations

import base64
from typing import Any

from channelworks_operator import spec
from channelworks_operator.builders import meta, pods
from channelworks_operator.builders.context import BuildContext, LayerConnection

Manifest = meta.Manifest
PASSWORD_KEY = "password"
CONFIG_FILE = "redis.conf"
DATA_VOLUME = "data"
CONFIG_VOLUME = "config"
CLUSTER_NODE_TIMEOUT_MS = 5000
# Redis may hold at most this share of its container's memory limit (``maxmemory``); the rest is
# for replication buffers, client buffers and fragmentation. With ``noeviction`` a full Redis
# refuses writes (the layer raises) instead of evicting keys of the channel layer silently.
MAXMEMORY_SHARE = 0.75

_BASE_CONFIG = """\
# Made by the Channelworks operator; the password comes from the command line.
port 6379
bind * -::*
protected-mode no
dir /data
# Channel layer data is short-lived (message expiry): no snapshots, no AOF.
save ""
appendonly no
maxmemory-policy noeviction
"""

_CLUSTER_CONFIG = f"""\
cluster-enabled yes
cluster-config-file /data/nodes.conf
cluster-node-timeout {CLUSTER_NODE_TIMEOUT_MS}
cluster-require-full-coverage no
cluster-replica-validity-factor 0
"""


def password_secret_ref(app: spec.App) -> spec.SecretKeyRef | None:
    """Where the app's Redis password is: the user's Secret, ours, or none (external, none)."""
    redis = app.channel_layer.redis
    if redis.password_ref is not None:
        return redis.password_ref
    if redis.managed:
        return spec.SecretKeyRef(meta.redis_name(app.ref), PASSWORD_KEY)
    return None


def owns_password_secret(app: spec.App) -> bool:
    """True when the operator generates the password Secret (managed Redis, no user Secret)."""
    redis = app.channel_layer.redis
    return redis.managed and redis.password_ref is None


def connection(app: spec.App) -> LayerConnection:
    redis = app.channel_layer.redis
    if redis.mode == "external":
        return LayerConnection("external", redis.url or "", redis.password_ref)
    return LayerConnection(redis.mode, meta.redis_url(app.ref), password_secret_ref(app))


def password_secret(app: spec.App, password: str) -> Manifest:
    """The generated password; made once, then kept (reconcile reads it back before building)."""
    encoded = base64.b64encode(password.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta.metadata(app.ref, meta.redis_name(app.ref), meta.CHANNEL_LAYER),
        "type": "Opaque",
        "data": {PASSWORD_KEY: encoded},
    }


def config_map(app: spec.App) -> Manifest:
    config = _BASE_CONFIG
    if app.channel_layer.redis.mode == "cluster":
        config += _CLUSTER_CONFIG
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta.metadata(app.ref, meta.redis_name(app.ref), meta.CHANNEL_LAYER),
        "data": {CONFIG_FILE: config},
    }


def headless_service(app: spec.App) -> Manifest:
    """Stable DNS for each node; not-ready nodes are published so a forming cluster sees them."""
    ports = [
        {"name": "redis", "port": meta.REDIS_PORT, "targetPort": "redis", "protocol": "TCP"},
    ]
    if app.channel_layer.redis.mode == "cluster":
        ports.append(
            {"name": "bus", "port": meta.REDIS_BUS_PORT, "targetPort": "bus", "protocol": "TCP"}
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(app.ref, meta.redis_name(app.ref), meta.CHANNEL_LAYER),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": meta.selector_labels(app.ref, meta.CHANNEL_LAYER),
            "ports": ports,
        },
    }


# Before a cluster node's container stops (pod deleted, evicted, rolled), a master hands its slots
# to its replica with a coordinated CLUSTER FAILOVER (the replica catches up first, nothing is
# lost) and waits until it is a replica itself. Without it a deleted master pod is back within
# cluster-node-timeout, before any failover, empty (no persistence) yet still a master, and its
# replica resyncs to the empty dataset: the shard's messages and group memberships are gone.
HAND_OVER = """\
cli() { redis-cli -a "$REDIS_PASSWORD" --no-auth-warning "$@"; }
set -- $(cli role)
[ "$1" = master ] && [ -n "$4" ] || exit 0
cli -h "$3" -p "$4" cluster failover || exit 0
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  set -- $(cli role)
  [ "$1" = slave ] && exit 0
  sleep 1
done
"""


def _container(app: spec.App, ctx: BuildContext) -> dict[str, Any]:
    redis = app.channel_layer.redis
    ref = password_secret_ref(app)
    env: list[dict[str, Any]] = []
    args = [f"/etc/redis/{CONFIG_FILE}"]
    if ref is not None:
        env.append(
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
        args += ["--requirepass", "$(REDIS_PASSWORD)", "--masterauth", "$(REDIS_PASSWORD)"]
    resources = pods.resources(redis.resources, "redis")
    limit = pods.memory_bytes((resources.get("limits") or {}).get("memory", ""))
    if limit:
        args += ["--maxmemory", str(int(limit * MAXMEMORY_SHARE))]
    ports = [{"name": "redis", "containerPort": meta.REDIS_PORT, "protocol": "TCP"}]
    if redis.mode == "cluster":
        env.append({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        args += ["--cluster-announce-ip", "$(POD_IP)"]
        ports.append({"name": "bus", "containerPort": meta.REDIS_BUS_PORT, "protocol": "TCP"})
    ping = 'redis-cli -h 127.0.0.1 -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG'
    lifecycle = {"preStop": {"exec": {"command": ["sh", "-c", HAND_OVER]}}}
    return {
        "name": "redis",
        "image": redis.image or ctx.redis_image,
        "command": ["redis-server"],
        "args": args,
        "env": env,
        "ports": ports,
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", ping]},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "tcpSocket": {"port": "redis"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        **({"lifecycle": lifecycle} if redis.mode == "cluster" else {}),
        "resources": resources,
        "securityContext": pods.container_security(),
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": "/data"},
            {"name": CONFIG_VOLUME, "mountPath": "/etc/redis", "readOnly": True},
        ],
        **({"imagePullPolicy": app.image_pull_policy} if app.image_pull_policy else {}),
    }


def _claim_template(app: spec.App) -> Manifest:
    storage = app.channel_layer.redis.storage
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class:
        claim_spec["storageClassName"] = storage.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": DATA_VOLUME, "labels": meta.labels(app.ref, meta.CHANNEL_LAYER)},
        "spec": claim_spec,
    }


def stateful_set(app: spec.App, ctx: BuildContext) -> Manifest:
    redis = app.channel_layer.redis
    volumes: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "configMap": {"name": meta.redis_name(app.ref)}},
    ]
    if redis.storage.ephemeral:
        volumes.append({"name": DATA_VOLUME, "emptyDir": {}})
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pods.pod_security(pods.REDIS_UID),
        "terminationGracePeriodSeconds": 30,
        "containers": [_container(app, ctx)],
        "volumes": volumes,
        "topologySpreadConstraints": pods.spread(app.ref, meta.CHANNEL_LAYER),
    }
    if app.image_pull_secrets:
        pod["imagePullSecrets"] = pods.image_pull_secrets(app)
    set_spec: dict[str, Any] = {
        "replicas": redis.nodes if ctx.redis_replicas is None else ctx.redis_replicas,
        "serviceName": meta.redis_name(app.ref),
        # Nodes start together; forming the cluster waits for all of them anyway.
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": meta.selector_labels(app.ref, meta.CHANNEL_LAYER)},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": meta.labels(app.ref, meta.CHANNEL_LAYER)},
            "spec": pod,
        },
    }
    if not redis.storage.ephemeral:
        set_spec["volumeClaimTemplates"] = [_claim_template(app)]
        set_spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": redis.storage.when_deleted,
            "whenScaled": redis.storage.when_scaled,
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta.metadata(app.ref, meta.redis_name(app.ref), meta.CHANNEL_LAYER),
        "spec": set_spec,
    }


def disruption_budget(app: spec.App) -> Manifest:
    """One Redis node down at a time: a replica takes over its master's slots meanwhile."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta.metadata(app.ref, meta.redis_name(app.ref), meta.CHANNEL_LAYER),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": meta.selector_labels(app.ref, meta.CHANNEL_LAYER)},
        },
    }
