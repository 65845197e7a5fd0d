"""Reading a RealtimeApp from a cluster, with the Kubernetes client and a kubeconfig.

Every failure becomes a :class:`ClusterError` that says which of these it is: no Kubernetes
client installed, no usable kubeconfig, the cluster unreachable, the credentials refused, the
CRD not installed, or the app not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from channelworks import install_hints, realtimeapp
from channelworks.exceptions import ClusterError

REQUEST_TIMEOUT = (5.0, 20.0)  # connect, read (seconds)
MISSING_CRD = (
    "the cluster at {server} does not know RealtimeApps (the CRD realtimeapps.channelworks.dev is "
    "not installed): install the Channelworks Helm chart first (docs/helm.md)"
)


@dataclass(frozen=True)
class Connection:
    """An API client, where it points, and the namespace its kubeconfig context selects."""

    api: Any  # kubernetes.client.ApiClient
    server: str
    namespace: str


def _kubernetes() -> Any:
    try:
        import kubernetes
    except ImportError:
        raise ClusterError(install_hints.kubernetes_message()) from None
    return kubernetes


def connect(kubeconfig: str | None, context: str | None) -> Connection:
    """A client for ``context`` (default: the current one) of ``kubeconfig`` (default:
    ``$KUBECONFIG``, else ``~/.kube/config``)."""
    kubernetes = _kubernetes()
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = active
        if context is not None:
            chosen = next((item for item in contexts if item["name"] == context), None)
            if chosen is None:
                names = ", ".join(sorted(item["name"] for item in contexts)) or "none"
                raise ClusterError(
                    f"--context {context}: no such context (the kubeconfig has {names})"
                )
        api = kubernetes.config.new_client_from_config(
            config_file=kubeconfig, context=context, persist_config=False
        )
    except (ConfigException, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as error:
        where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
        raise ClusterError(f"no usable kubeconfig ({where}): {error}") from None
    namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
    return Connection(api=api, server=api.configuration.host, namespace=namespace)


def _crd_installed(connection: Connection) -> bool:
    kubernetes = _kubernetes()
    objects = kubernetes.client.CustomObjectsApi(connection.api)
    try:
        found = objects.get_api_resources(
            realtimeapp.GROUP, realtimeapp.VERSION, _request_timeout=REQUEST_TIMEOUT
        )
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return False
        raise ClusterError(
            f"the cluster at {connection.server} answered {error.status} {error.reason} when "
            f"asked which resources {realtimeapp.GROUP}/{realtimeapp.VERSION} has"
        ) from None
    return any(resource.name == realtimeapp.PLURAL for resource in found.resources or [])


def _answer_error(connection: Connection, error: Any, name: str, namespace: str) -> ClusterError:
    status, reason = error.status, error.reason
    if status == 404:
        if not _crd_installed(connection):
            return ClusterError(MISSING_CRD.format(server=connection.server))
        return ClusterError(
            f"no RealtimeApp {name!r} in namespace {namespace!r} "
            f"(`kubectl get rtapp -n {namespace}` lists the ones there)"
        )
    if status == 401:
        return ClusterError(
            f"the cluster at {connection.server} refused the kubeconfig's credentials "
            "(401 Unauthorized): log in again or choose another --context"
        )
    if status == 403:
        return ClusterError(
            f"not allowed to read RealtimeApps in namespace {namespace!r} (403 Forbidden): "
            "the kubeconfig's user needs get on realtimeapps.channelworks.dev"
        )
    return ClusterError(f"the cluster at {connection.server} answered {status} {reason}")


def read_app(connection: Connection, name: str, namespace: str) -> dict[str, Any]:
    """The RealtimeApp object ``namespace/name`` as a dict."""
    kubernetes = _kubernetes()
    import urllib3

    objects = kubernetes.client.CustomObjectsApi(connection.api)
    try:
        try:
            app: dict[str, Any] = objects.get_namespaced_custom_object(
                realtimeapp.GROUP,
                realtimeapp.VERSION,
                namespace,
                realtimeapp.PLURAL,
                name,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except kubernetes.client.ApiException as error:
            raise _answer_error(connection, error, name, namespace) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        cause = getattr(error, "reason", None) or error
        raise ClusterError(f"cannot reach the cluster at {connection.server}: {cause}") from None
    return app


def read_layer_objects(connection: Connection, name: str, namespace: str) -> Any:
    """The app's Redis pods and volume claims, the claims' Warning events and the cluster's
    StorageClasses, for :mod:`channelworks.deploy.layer_diagnosis`; None when the kubeconfig's
    user may not read pods or claims (the summary then says only what the status says)."""
    from channelworks.deploy.layer_diagnosis import LayerObjects

    kubernetes = _kubernetes()
    core = kubernetes.client.CoreV1Api(connection.api)
    storage = kubernetes.client.StorageV1Api(connection.api)
    plain = connection.api.sanitize_for_serialization
    selector = (
        f"{realtimeapp.INSTANCE_LABEL}={name},"
        f"{realtimeapp.COMPONENT_LABEL}={realtimeapp.CHANNEL_LAYER}"
    )
    timeout = {"_request_timeout": REQUEST_TIMEOUT}
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=selector, **timeout).items
        claims = core.list_namespaced_persistent_volume_claim(
            namespace, label_selector=selector, **timeout
        ).items
        events = core.list_namespaced_event(
            namespace, field_selector="involvedObject.kind=PersistentVolumeClaim", **timeout
        ).items
    except kubernetes.client.ApiException:
        return None
    try:
        classes: list[Any] | None = [
            plain(item) for item in storage.list_storage_class(**timeout).items
        ]
    except kubernetes.client.ApiException:
        classes = None  # StorageClasses are cluster-wide: a namespaced user may not list them
    return LayerObjects(
        pods=[plain(item) for item in pods],
        claims=[plain(item) for item in claims],
        storage_classes=classes,
        events=[plain(item) for item in events],
    )
