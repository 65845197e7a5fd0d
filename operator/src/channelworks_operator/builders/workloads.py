"""Interface and worker Deployments, the interface Service and their PDBs (pure)."""

from __future__ import annotations

from typing import Any

from channelworks_operator import spec
from channelworks_operator.builders import django, meta, pods
from channelworks_operator.builders.context import BuildContext, LayerConnection

Manifest = meta.Manifest
WORKER_DRAIN_MARGIN_SECONDS = 5  # the worker stops taking work this long before SIGKILL


def layer_env(app: spec.App, layer: LayerConnection) -> list[dict[str, Any]]:
    """The image contract's channel-layer variables, the same for interface and worker."""
    env: list[dict[str, Any]] = [
        {"name": "CHANNELWORKS_APP", "value": app.ref.prefix},
        {"name": "CHANNELWORKS_REDIS_MODE", "value": layer.mode},
        {"name": "CHANNELWORKS_REDIS_URL", "value": layer.url},
    ]
    if layer.password is not None:
        env.append(
            {
                "name": "CHANNELWORKS_REDIS_PASSWORD",
                "valueFrom": {
                    "secretKeyRef": {"name": layer.password.name, "key": layer.password.key}
                },
            }
        )
    env += [
        {"name": "CHANNELWORKS_LAYER_CAPACITY", "value": str(app.channel_layer.capacity)},
        {"name": "CHANNELWORKS_LAYER_EXPIRY", "value": str(app.channel_layer.expiry)},
        {"name": "CHANNELWORKS_METRICS_PORT", "value": str(meta.METRICS_PORT)},
        {"name": "CHANNELWORKS_LOG_FORMAT", "value": "json"},
    ]
    if app.channel_layer.work_shards is not None:  # every process of the app: the same count
        shards = str(app.channel_layer.work_shards)
        env.append({"name": "CHANNELWORKS_LAYER_SHARDS", "value": shards})
    return env


def merge_env(ours: list[dict[str, Any]], theirs: tuple[spec.Json, ...]) -> list[dict[str, Any]]:
    """Our variables, then the user's; a user's variable replaces ours of the same name.

    Names stay unique (server-side apply treats ``env`` as a map keyed by name).
    """
    merged: dict[str, dict[str, Any]] = {item["name"]: item for item in ours}
    for item in theirs:
        merged.pop(item["name"], None)
        merged[item["name"]] = dict(item)
    return list(merged.values())


def _pod_spec(
    app: spec.App,
    container: dict[str, Any],
    grace_seconds: int,
    placement: spec.Placement,
    component: str,
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pods.pod_security(pods.APP_UID),
        "terminationGracePeriodSeconds": grace_seconds,
        "containers": [container],
        "volumes": [pods.tmp_volume()],
        "topologySpreadConstraints": pods.spread(app.ref, component),
    }
    if app.service_account:
        pod["serviceAccountName"] = app.service_account
    if app.image_pull_secrets:
        pod["imagePullSecrets"] = pods.image_pull_secrets(app)
    pods.apply_placement(pod, placement)
    return pod


def _container(
    app: spec.App,
    name: str,
    image: str,
    command: str,
    env: list[dict[str, Any]],
    ports: list[dict[str, Any]],
    resources: spec.Json,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "command": [command],
        "env": env,
        "ports": ports,
        **pods.http_probes(),
        "resources": pods.resources(resources, name),
        "securityContext": pods.container_security(),
        "volumeMounts": [pods.tmp_mount()],
    }
    if app.image_pull_policy:
        container["imagePullPolicy"] = app.image_pull_policy
    return container


def _metrics_port() -> dict[str, Any]:
    return {"name": meta.METRICS_PORT_NAME, "containerPort": meta.METRICS_PORT, "protocol": "TCP"}


def _interface_replicas(app: spec.App, ctx: BuildContext) -> Manifest:
    """``replicas`` of the interface Deployment: the autoscaler's count, none when KEDA or an HPA
    owns it, the least count in mode keda without KEDA, else spec.interface.replicas."""
    scaling = app.interface.autoscaling
    if ctx.interface_replicas is not None:
        return {"replicas": ctx.interface_replicas}
    external = scaling.mode == "hpa" or (scaling.mode == "keda" and ctx.keda_available)
    if scaling.enabled and external:
        return {}
    return {"replicas": scaling.min_replicas if scaling.enabled else app.interface.replicas}


def interface_deployment(app: spec.App, ctx: BuildContext, layer: LayerConnection) -> Manifest:
    iface = app.interface
    env = merge_env(
        [
            *layer_env(app, layer),
            {"name": "PORT", "value": str(iface.port)},
            {"name": "CHANNELWORKS_INTERFACE_GRACE_PERIOD", "value": str(iface.grace_seconds)},
        ],
        iface.env,
    )
    ports = [
        {"name": meta.HTTP_PORT_NAME, "containerPort": iface.port, "protocol": "TCP"},
        _metrics_port(),
    ]
    image = iface.image or ctx.interface_image
    container = _container(
        app, "interface", image, "channelworks-interface", env, ports, iface.resources
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta.metadata(app.ref, meta.interface_name(app.ref), meta.INTERFACE),
        "spec": {
            **_interface_replicas(app, ctx),
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": meta.selector_labels(app.ref, meta.INTERFACE)},
            # Never fewer interface pods than asked while rolling: they hold the sockets.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {
                "metadata": pods.template_metadata(app.ref, meta.INTERFACE, iface.placement),
                "spec": _pod_spec(
                    app, container, iface.grace_seconds, iface.placement, meta.INTERFACE
                ),
            },
        },
    }


def interface_service(app: spec.App) -> Manifest:
    iface = app.interface
    annotations = dict(iface.service_annotations) or None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(
            app.ref, meta.interface_name(app.ref), meta.INTERFACE, annotations=annotations
        ),
        "spec": {
            "type": iface.service_type,
            "selector": meta.selector_labels(app.ref, meta.INTERFACE),
            "ports": [
                {
                    "name": meta.HTTP_PORT_NAME,
                    "port": iface.port,
                    "targetPort": meta.HTTP_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


# The label that tells the pods (and the selector) of one worker pool from the others'.
POOL_LABEL = "channelworks.dev/pool"


def worker_name(app: spec.AppRef, pool: spec.WorkerPool) -> str:
    """``<app>-worker`` for the default pool, ``<app>-worker-<pool>`` for a named one."""
    base = meta.worker_name(app)
    return base if pool.name is None else f"{base}-{pool.name}"


def _pool_env(pool: spec.WorkerPool) -> list[dict[str, Any]]:
    """What makes a named pool's workers take its channels only (nothing for the default)."""
    if pool.channels:
        return [{"name": "CHANNELWORKS_WORKER_CHANNELS", "value": ",".join(pool.channels)}]
    if pool.exclude:
        return [{"name": "CHANNELWORKS_WORKER_EXCLUDE_CHANNELS", "value": ",".join(pool.exclude)}]
    return []


def worker_deployment(
    app: spec.App,
    ctx: BuildContext,
    layer: LayerConnection,
    pool: spec.WorkerPool | None = None,
) -> Manifest:
    """The Deployment of one worker pool (the default pool, ``<app>-worker``, when None)."""
    pool = pool or app.pools[0]
    worker = pool.worker
    env = [
        *layer_env(app, layer),
        {"name": "CHANNELWORKS_WORKER_CONCURRENCY", "value": str(worker.concurrency)},
        {
            "name": "CHANNELWORKS_DRAIN_SECONDS",
            "value": str(max(1, worker.grace_seconds - WORKER_DRAIN_MARGIN_SECONDS)),
        },
        *_pool_env(pool),
    ]
    if pool.settings_module:
        env.append({"name": "DJANGO_SETTINGS_MODULE", "value": pool.settings_module})
    env = merge_env([*env, *django.env(app, ctx.ingress_hosts)], app.django_env)
    image = pool.image or app.image
    container = _container(
        app, "worker", image, "channelworks-worker", env, [_metrics_port()], worker.resources
    )
    env_from = [*django.env_from(app), *(dict(item) for item in app.django_env_from)]
    if env_from:
        container["envFrom"] = env_from
    pool_labels = {} if pool.name is None else {POOL_LABEL: pool.name}
    template_metadata = pods.template_metadata(app.ref, meta.WORKER, worker.placement)
    template_metadata["labels"] = {**template_metadata["labels"], **pool_labels}
    deployment_spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": {**meta.selector_labels(app.ref, meta.WORKER), **pool_labels}},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        },
        "template": {
            "metadata": template_metadata,
            "spec": _pod_spec(app, container, worker.grace_seconds, worker.placement, meta.WORKER),
        },
    }
    replicas = ctx.worker_replicas if pool.name is None else ctx.pool_replicas_of(pool.name)
    if replicas is not None:
        deployment_spec = {"replicas": replicas, **deployment_spec}
    name = worker_name(app.ref, pool)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta.metadata(app.ref, name, meta.WORKER, extra_labels=pool_labels or None),
        "spec": deployment_spec,
    }


def disruption_budget(app: spec.App, component: str) -> Manifest:
    """At most one pod of a component evicted at a time (drains, node upgrades)."""
    name = (
        meta.interface_name(app.ref) if component == meta.INTERFACE else meta.worker_name(app.ref)
    )
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta.metadata(app.ref, name, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": meta.selector_labels(app.ref, component)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
