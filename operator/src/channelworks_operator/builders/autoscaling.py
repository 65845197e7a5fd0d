"""KEDA ScaledObjects and HorizontalPodAutoscalers (modes keda and hpa; pure).

Workers scale on the queue depth per worker and on the age of the oldest waiting message (the
operator's ``channelworks_layer_*`` gauges, refreshed every ``pollIntervalSeconds``); interface
pods on the CPU their process uses and on the open WebSockets per pod (the operator's
``channelworks_operator_interface_connections`` gauge). Mode builtin makes neither: the
operator itself writes the Deployments' replicas.
"""

from __future__ import annotations

from channelworks_operator import spec
from channelworks_operator.builders import meta, workloads

Manifest = meta.Manifest
KEDA_API_VERSION = "keda.sh/v1alpha1"
HPA_API_VERSION = "autoscaling/v2"


def _selector(app: spec.App, pool: spec.WorkerPool | None) -> dict[str, str]:
    """The labels that pick a worker pool's series: the app's, and the pool's own for a named
    pool (the operator's ``channelworks_operator_pool_*`` gauges carry ``pool``)."""
    labels = {"app": app.ref.prefix}
    if pool is not None and pool.name is not None:
        labels["pool"] = pool.name
    return labels


def _promql(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def default_query(app: spec.App, pool: spec.WorkerPool | None = None) -> str:
    """The queue depth a ScaledObject reads: the app's, or a named pool's own channels'."""
    named = pool is not None and pool.name is not None
    metric = spec.POOL_QUEUE_DEPTH_METRIC if named else spec.QUEUE_DEPTH_METRIC
    return f"sum({_promql(metric, _selector(app, pool))})"


def oldest_age_query(app: spec.App, pool: spec.WorkerPool | None = None) -> str:
    named = pool is not None and pool.name is not None
    metric = spec.POOL_OLDEST_AGE_METRIC if named else spec.OLDEST_AGE_METRIC
    return f"max({_promql(metric, _selector(app, pool))})"


def connections_query(app: spec.App) -> str:
    return f'sum({spec.CONNECTIONS_METRIC}{{app="{app.ref.prefix}"}})'


def cpu_per_pod(percent: int) -> str:
    """Percent of one core as a CPU quantity (70 -> "700m"): an average value, so it needs no
    CPU request on the pods (a utilization target would)."""
    return f"{percent * 10}m"


def _scale_target(name: str) -> Manifest:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


def _scale_down_behavior(window: int) -> Manifest:
    return {"scaleDown": {"stabilizationWindowSeconds": window}}


Targets = spec.AutoscalingSpec | spec.InterfaceAutoscalingSpec


def _pool_labels(pool: spec.WorkerPool | None) -> dict[str, str] | None:
    return {workloads.POOL_LABEL: pool.name} if pool is not None and pool.name else None


def _scaled_object(
    app: spec.App,
    name: str,
    component: str,
    targets: Targets,
    triggers: list[Manifest],
    pool: spec.WorkerPool | None = None,
) -> Manifest:
    window = targets.scale_down_stabilization_seconds
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": meta.metadata(app.ref, name, component, extra_labels=_pool_labels(pool)),
        "spec": {
            "scaleTargetRef": _scale_target(name),
            "minReplicaCount": targets.min_replicas,
            "maxReplicaCount": targets.max_replicas,
            "pollingInterval": targets.poll_interval_seconds,
            "cooldownPeriod": max(window, 30),
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": _scale_down_behavior(window)}
            },
            "triggers": triggers,
        },
    }


def _prometheus(address: str, query: str, threshold: int, metric_type: str) -> Manifest:
    return {
        "type": "prometheus",
        "metricType": metric_type,
        "metadata": {
            "serverAddress": address,
            "query": query,
            "threshold": str(threshold),
            "activationThreshold": "0",
        },
    }


def scaled_object(app: spec.App, pool: spec.WorkerPool | None = None) -> Manifest:
    """A worker pool's (the default pool's when None): queue depth per worker (AverageValue) and
    the oldest message's age (Value: workers grow in proportion to how late the oldest message
    is), both of the channels the pool takes."""
    pool = pool or app.pools[0]
    autoscaling = pool.worker.autoscaling
    address = autoscaling.prometheus_address or ""
    return _scaled_object(
        app,
        workloads.worker_name(app.ref, pool),
        meta.WORKER,
        autoscaling,
        [
            _prometheus(
                address,
                autoscaling.prometheus_query or default_query(app, pool),
                autoscaling.target_queue_depth,
                "AverageValue",
            ),
            _prometheus(
                address,
                oldest_age_query(app, pool),
                autoscaling.target_oldest_age_seconds,
                "Value",
            ),
        ],
        pool,
    )


def interface_scaled_object(app: spec.App) -> Manifest:
    """The interface pods': CPU per pod, and open WebSockets per pod when Prometheus is given."""
    autoscaling = app.interface.autoscaling
    triggers: list[Manifest] = [
        {
            "type": "cpu",
            "metricType": "AverageValue",
            "metadata": {"value": cpu_per_pod(autoscaling.target_cpu_percent)},
        }
    ]
    if autoscaling.prometheus_address:
        triggers.append(
            _prometheus(
                autoscaling.prometheus_address,
                connections_query(app),
                autoscaling.target_connections,
                "AverageValue",
            )
        )
    return _scaled_object(app, meta.interface_name(app.ref), meta.INTERFACE, autoscaling, triggers)


def _external(
    app: spec.App, metric: str, target: Manifest, pool: spec.WorkerPool | None = None
) -> Manifest:
    return {
        "type": "External",
        "external": {
            "metric": {"name": metric, "selector": {"matchLabels": _selector(app, pool)}},
            "target": target,
        },
    }


def _hpa(
    app: spec.App,
    name: str,
    component: str,
    targets: Targets,
    metrics: list[Manifest],
    pool: spec.WorkerPool | None = None,
) -> Manifest:
    return {
        "apiVersion": HPA_API_VERSION,
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta.metadata(app.ref, name, component, extra_labels=_pool_labels(pool)),
        "spec": {
            "scaleTargetRef": _scale_target(name),
            "minReplicas": max(1, targets.min_replicas),  # an HPA cannot scale to zero
            "maxReplicas": targets.max_replicas,
            "behavior": _scale_down_behavior(targets.scale_down_stabilization_seconds),
            "metrics": metrics,
        },
    }


def horizontal_pod_autoscaler(app: spec.App, pool: spec.WorkerPool | None = None) -> Manifest:
    """A worker pool's (the default pool's when None): the queue depth per worker and the
    oldest message's age (external metrics, selected by the app's label and a named pool's)."""
    pool = pool or app.pools[0]
    autoscaling = pool.worker.autoscaling
    depth = {"type": "AverageValue", "averageValue": str(autoscaling.target_queue_depth)}
    age = {"type": "Value", "value": str(autoscaling.target_oldest_age_seconds)}
    age_metric = spec.OLDEST_AGE_METRIC if pool.name is None else spec.POOL_OLDEST_AGE_METRIC
    return _hpa(
        app,
        workloads.worker_name(app.ref, pool),
        meta.WORKER,
        autoscaling,
        [
            _external(app, autoscaling.metric_name, depth, pool),
            _external(app, age_metric, age, pool),
        ],
        pool,
    )


def interface_horizontal_pod_autoscaler(app: spec.App) -> Manifest:
    """The interface pods': CPU per pod (a resource metric) and, with ``metricName``, open
    WebSockets per pod (an external metric served from the operator's gauge). Only on request:
    an HPA that cannot read one of its metrics never scales in."""
    autoscaling = app.interface.autoscaling
    cpu = {"type": "AverageValue", "averageValue": cpu_per_pod(autoscaling.target_cpu_percent)}
    metrics: list[Manifest] = [{"type": "Resource", "resource": {"name": "cpu", "target": cpu}}]
    if autoscaling.metric_name:
        target = {"type": "AverageValue", "averageValue": str(autoscaling.target_connections)}
        metrics.append(_external(app, autoscaling.metric_name, target))
    return _hpa(app, meta.interface_name(app.ref), meta.INTERFACE, autoscaling, metrics)
