"""Pure builders: a parsed ``spec.App`` plus a ``BuildContext`` in, manifests (dicts) out.

No I/O and no kopf here; ``reconcile`` gathers the inputs and ``kube`` applies the results.
"""

from __future__ import annotations

from dataclasses import dataclass

from channelworks_operator import spec
from channelworks_operator.builders import autoscaling, meta, monitoring, network, redis, workloads
from channelworks_operator.builders.context import BuildContext, LayerConnection

Manifest = meta.Manifest

__all__ = ["BuildContext", "ChildRef", "LayerConnection", "Manifest", "desired", "possible"]


@dataclass(frozen=True, order=True)
class ChildRef:
    """An object the operator may make for an app (to find and remove ones no longer wanted)."""

    api_version: str
    kind: str
    name: str


def ref_of(manifest: Manifest) -> ChildRef:
    return ChildRef(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"])


def desired(app: spec.App, ctx: BuildContext) -> list[Manifest]:
    """Every object the app needs now, in the order to apply them (dependencies first)."""
    layer = redis.connection(app)
    children: list[Manifest] = []
    if app.channel_layer.redis.managed:
        if redis.owns_password_secret(app) and ctx.redis_password is not None:
            children.append(redis.password_secret(app, ctx.redis_password))
        children += [
            redis.config_map(app),
            redis.headless_service(app),
            redis.stateful_set(app, ctx),
        ]
        if app.channel_layer.redis.mode == "cluster":
            children.append(redis.disruption_budget(app))
        if app.network_policy:
            children.append(network.redis_policy(app, ctx))
    children += [
        workloads.interface_deployment(app, ctx, layer),
        workloads.interface_service(app),
        workloads.disruption_budget(app, meta.INTERFACE),
        *(workloads.worker_deployment(app, ctx, layer, pool) for pool in app.pools),
        workloads.disruption_budget(app, meta.WORKER),
    ]
    for pool in app.pools:  # keda and hpa: one ScaledObject or HPA per pool's Deployment
        scaling = pool.worker.autoscaling
        if scaling.enabled and scaling.mode == "keda" and ctx.keda_available:
            children.append(autoscaling.scaled_object(app, pool))
        if scaling.enabled and scaling.mode == "hpa":
            children.append(autoscaling.horizontal_pod_autoscaler(app, pool))
    interfaces = app.interface.autoscaling
    if interfaces.enabled and interfaces.mode == "keda" and ctx.keda_available:
        children.append(autoscaling.interface_scaled_object(app))
    if interfaces.enabled and interfaces.mode == "hpa":
        children.append(autoscaling.interface_horizontal_pod_autoscaler(app))
    if app.monitoring.enabled and app.monitoring.kind in ctx.monitor_kinds:
        if app.monitoring.kind == "PodMonitor":
            children.append(monitoring.pod_monitor(app))
        else:
            children += [monitoring.metrics_service(app), monitoring.service_monitor(app)]
    return children


def possible(app: spec.AppRef) -> list[ChildRef]:
    """Objects that come and go with the spec; the ones not desired are removed (a worker
    pool's Deployment, ScaledObject and HPA are found by their labels, see ``applying``)."""
    worker = meta.worker_name(app)
    interface = meta.interface_name(app)
    redis_name = meta.redis_name(app)
    return [
        ChildRef(autoscaling.KEDA_API_VERSION, "ScaledObject", worker),
        ChildRef(autoscaling.HPA_API_VERSION, "HorizontalPodAutoscaler", worker),
        ChildRef(autoscaling.KEDA_API_VERSION, "ScaledObject", interface),
        ChildRef(autoscaling.HPA_API_VERSION, "HorizontalPodAutoscaler", interface),
        ChildRef(monitoring.API_VERSION, "PodMonitor", app.name),
        ChildRef(monitoring.API_VERSION, "ServiceMonitor", app.name),
        ChildRef("v1", "Service", meta.metrics_service_name(app)),
        ChildRef("networking.k8s.io/v1", "NetworkPolicy", redis_name),
        ChildRef("policy/v1", "PodDisruptionBudget", redis_name),
    ]
