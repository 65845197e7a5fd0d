"""PodMonitor / ServiceMonitor for the Prometheus Operator (pure), made only when its CRDs exist.

Both scrape ``/metrics`` on the ``metrics`` port (9100) of the interface and worker pods.
"""

from __future__ import annotations

from channelworks_operator import spec
from channelworks_operator.builders import meta

Manifest = meta.Manifest
API_VERSION = "monitoring.coreos.com/v1"


def _endpoint(app: spec.App) -> Manifest:
    return {"port": meta.METRICS_PORT_NAME, "path": "/metrics", "interval": app.monitoring.interval}


def _app_pods(app: spec.App) -> Manifest:
    return {
        "matchLabels": meta.selector_labels(app.ref),
        "matchExpressions": [
            {
                "key": meta.COMPONENT_LABEL,
                "operator": "In",
                "values": [meta.INTERFACE, meta.WORKER],
            }
        ],
    }


def pod_monitor(app: spec.App) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitor",
        "metadata": meta.metadata(
            app.ref, app.ref.name, meta.MONITORING, extra_labels=dict(app.monitoring.labels)
        ),
        "spec": {
            "selector": _app_pods(app),
            "podMetricsEndpoints": [_endpoint(app)],
        },
    }


def metrics_service(app: spec.App) -> Manifest:
    """A headless Service over the interface and worker pods' metrics port (ServiceMonitor).

    It selects every pod of the app; pods without a ``metrics`` port (Redis) get no endpoint.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(app.ref, meta.metrics_service_name(app.ref), meta.MONITORING),
        "spec": {
            "clusterIP": "None",
            "selector": meta.selector_labels(app.ref),
            "ports": [
                {
                    "name": meta.METRICS_PORT_NAME,
                    "port": meta.METRICS_PORT,
                    "targetPort": meta.METRICS_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def service_monitor(app: spec.App) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": meta.metadata(
            app.ref, app.ref.name, meta.MONITORING, extra_labels=dict(app.monitoring.labels)
        ),
        "spec": {
            "selector": {
                "matchLabels": {
                    **meta.selector_labels(app.ref, meta.MONITORING),
                }
            },
            "endpoints": [_endpoint(app)],
        },
    }
