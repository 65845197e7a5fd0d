"""Names, labels and owner references of everything the operator makes for an app (pure)."""

from __future__ import annotations

from typing import Any

# The labels and the components the status command also reads: the SDK's, defined once there.
from channelworks.realtimeapp import CHANNEL_LAYER as CHANNEL_LAYER
from channelworks.realtimeapp import COMPONENT_LABEL as COMPONENT_LABEL
from channelworks.realtimeapp import INSTANCE_LABEL as INSTANCE_LABEL
from channelworks.realtimeapp import INTERFACE as INTERFACE
from channelworks.realtimeapp import MANAGED_BY as MANAGED_BY
from channelworks.realtimeapp import MANAGED_BY_LABEL as MANAGED_BY_LABEL
from channelworks.realtimeapp import NAME as NAME
from channelworks.realtimeapp import NAME_LABEL as NAME_LABEL
from channelworks.realtimeapp import WORKER as WORKER
from channelworks_operator import spec

Manifest = dict[str, Any]
MONITORING = "monitoring"
MIGRATE = "migrate"  # the migration Jobs (spec.django.migrate)

HTTP_PORT_NAME = "http"
METRICS_PORT = spec.METRICS_PORT
METRICS_PORT_NAME = "metrics"
REDIS_PORT = 6379
REDIS_BUS_PORT = 16379


def interface_name(app: spec.AppRef) -> str:
    return f"{app.name}-interface"


def worker_name(app: spec.AppRef) -> str:
    return f"{app.name}-worker"


def redis_name(app: spec.AppRef) -> str:
    return f"{app.name}-redis"


def metrics_service_name(app: spec.AppRef) -> str:
    return f"{app.name}-metrics"


def endpoint(app: spec.AppRef, port: int) -> str:
    """Where clients reach the app inside the cluster: ``<app>-interface.<ns>.svc:<port>``."""
    return f"{interface_name(app)}.{app.namespace}.svc:{port}"


def redis_url(app: spec.AppRef) -> str:
    """The URL of a Redis the operator runs (through its headless Service)."""
    return f"redis://{redis_name(app)}.{app.namespace}.svc:{REDIS_PORT}"


def selector_labels(app: spec.AppRef, component: str | None = None) -> dict[str, str]:
    """Labels that select the app's pods (of one component); never change once created."""
    labels = {NAME_LABEL: NAME, INSTANCE_LABEL: app.name}
    if component is not None:
        labels[COMPONENT_LABEL] = component
    return labels


def labels(app: spec.AppRef, component: str) -> dict[str, str]:
    return {**selector_labels(app, component), MANAGED_BY_LABEL: MANAGED_BY}


def selector_string(app: spec.AppRef, component: str) -> str:
    """A label selector as ``kubectl get -l`` takes it (the scale subresource reports this)."""
    return ",".join(f"{key}={value}" for key, value in selector_labels(app, component).items())


def owner_reference(app: spec.AppRef) -> Manifest:
    """Makes the app the controller of a child: deleting the app deletes the child."""
    return {
        "apiVersion": spec.API_VERSION,
        "kind": spec.KIND,
        "name": app.name,
        "uid": app.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    app: spec.AppRef,
    name: str,
    component: str,
    *,
    annotations: dict[str, str] | None = None,
    extra_labels: dict[str, str] | None = None,
) -> Manifest:
    meta: Manifest = {
        "name": name,
        "namespace": app.namespace,
        "labels": {**(extra_labels or {}), **labels(app, component)},
        "ownerReferences": [owner_reference(app)],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def object_key(manifest: Manifest) -> str:
    """``Kind/namespace/name`` of a manifest, for logs and the skip memo."""
    meta = manifest["metadata"]
    return f"{manifest['kind']}/{meta.get('namespace', '')}/{meta['name']}"
