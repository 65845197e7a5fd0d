"""KEDA ScaledObjects and HorizontalPodAutoscalers (modes keda and hpa; pure).

Workers scale on the queue depth per worker and on the age of the oldest waiting message (the
operator's ``channelworks_layer_*`` gauges, refreshed every ``pollIntervalSeconds``); interface
pods on the CPU their process uses and on the open WebSockets per pod (the operator's
``channelworks_operator_interface_connections`` gauge). Mode builtin makes neither: the
operator itself writes the Deployments' replicas.
"""

from __future__ import annotations

from channelworks_operator import spec
from channelworks_operator.builders import meta

Manifest = meta.Manifest
KEDA_API_VERSION = "keda.sh/v1alpha1"
HPA_API_VERSION = "autoscaling/v2"


def default_query(app: spec.App) -> str:
    return f'sum({spec.QUEUE_DEPTH_METRIC}{{app="{app.ref.prefix}"}})'


def oldest_age_query(app: spec.App) -> str:
    return f'max({spec.OLDEST_AGE_METRIC}{{app="{app.ref.prefix}"}})'


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


def _scaled_object(
    app: spec.App, name: str, component: str, targets: Targets, triggers: list[Manifest]
) -> Manifest:
    window = targets.scale_down_stabilization_seconds
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": meta.metadata(app.ref, name, component),
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


def scaled_object(app: spec.App) -> Manifest:
    """The workers': queue depth per worker (AverageValue) and the oldest message's age (Value:
    workers grow in proportion to how late the oldest message is)."""
    autoscaling = app.worker.autoscaling
    address = autoscaling.prometheus_address or ""
    return _scaled_object(
        app,
        meta.worker_name(app.ref),
        meta.WORKER,
        autoscaling,
        [
            _prometheus(
                address,
                autoscaling.prometheus_query or default_query(app),
                autoscaling.target_queue_depth,
                "AverageValue",
            ),
            _prometheus(
                address, oldest_age_query(app), autoscaling.target_oldest_age_seconds, "Value"
            ),
        ],
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


def _external(app: spec.App, metric: str, target: Manifest) -> Manifest:
    return {
        "type": "External",
        "external": {
            "metric": {"name": metric, "selector": {"matchLabels": {"app": app.ref.prefix}}},
            "target": target,
        },
    }


def _hpa(
    app: spec.App, name: str, component: str, targets: Targets, metrics: list[Manifest]
) -> Manifest:
    return {
        "apiVersion": HPA_API_VERSION,
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta.metadata(app.ref, name, component),
        "spec": {
            "scaleTargetRef": _scale_target(name),
            "minReplicas": max(1, targets.min_replicas),  # an HPA cannot scale to zero
            "maxReplicas": targets.max_replicas,
            "behavior": _scale_down_behavior(targets.scale_down_stabilization_seconds),
            "metrics": metrics,
        },
    }


def horizontal_pod_autoscaler(app: spec.App) -> Manifest:
    """The workers': the queue depth per worker and the oldest message's age (external metrics,
    selected by the app's label)."""
    autoscaling = app.worker.autoscaling
    depth = {"type": "AverageValue", "averageValue": str(autoscaling.target_queue_depth)}
    age = {"type": "Value", "value": str(autoscaling.target_oldest_age_seconds)}
    return _hpa(
        app,
        meta.worker_name(app.ref),
        meta.WORKER,
        autoscaling,
        [
            _external(app, autoscaling.metric_name, depth),
            _external(app, spec.OLDEST_AGE_METRIC, age),
        ],
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
