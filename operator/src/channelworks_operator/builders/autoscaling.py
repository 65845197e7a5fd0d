"""KEDA ScaledObject and HorizontalPodAutoscaler for the workers (modes keda and hpa; pure).

Mode builtin makes neither: the operator itself writes the worker Deployment's replicas.
"""

from __future__ import annotations

from channelworks_operator import spec
from channelworks_operator.builders import meta

Manifest = meta.Manifest
KEDA_API_VERSION = "keda.sh/v1alpha1"


def default_query(app: spec.App) -> str:
    return f'sum({spec.QUEUE_DEPTH_METRIC}{{app="{app.ref.prefix}"}})'


def _scale_target(app: spec.App) -> Manifest:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta.worker_name(app.ref)}


def _scale_down_behavior(autoscaling: spec.AutoscalingSpec) -> Manifest:
    return {
        "scaleDown": {"stabilizationWindowSeconds": autoscaling.scale_down_stabilization_seconds}
    }


def scaled_object(app: spec.App) -> Manifest:
    autoscaling = app.worker.autoscaling
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": meta.metadata(app.ref, meta.worker_name(app.ref), meta.WORKER),
        "spec": {
            "scaleTargetRef": _scale_target(app),
            "minReplicaCount": autoscaling.min_replicas,
            "maxReplicaCount": autoscaling.max_replicas,
            "pollingInterval": autoscaling.poll_interval_seconds,
            "cooldownPeriod": max(autoscaling.scale_down_stabilization_seconds, 30),
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": _scale_down_behavior(autoscaling)}
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": autoscaling.prometheus_address or "",
                        "query": autoscaling.prometheus_query or default_query(app),
                        "threshold": str(autoscaling.target_queue_depth),
                        "activationThreshold": "0",
                    },
                }
            ],
        },
    }


def horizontal_pod_autoscaler(app: spec.App) -> Manifest:
    autoscaling = app.worker.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta.metadata(app.ref, meta.worker_name(app.ref), meta.WORKER),
        "spec": {
            "scaleTargetRef": _scale_target(app),
            "minReplicas": max(1, autoscaling.min_replicas),
            "maxReplicas": autoscaling.max_replicas,
            "behavior": _scale_down_behavior(autoscaling),
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": autoscaling.metric_name,
                            "selector": {"matchLabels": {"app": app.ref.prefix}},
                        },
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(autoscaling.target_queue_depth),
                        },
                    },
                }
            ],
        },
    }
