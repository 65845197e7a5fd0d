"""The one module that talks to the Kubernetes API (besides kopf's own watching).

A thin, typed layer over the official client's REST transport: objects are plain dicts, every
write is a server-side apply with one fixed field manager (so an unchanged object is not
rewritten: the API server sees the same applied configuration and keeps its resourceVersion),
and every failure is an ``ApiError`` with the status and the server's message. Calls block:
``reconcile`` runs them in a worker thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import kubernetes

from channelworks import realtimeapp
from channelworks_operator import timestamps
from channelworks_operator.exceptions import ApiError, ConfigurationError

logger = logging.getLogger(__name__)

FIELD_MANAGER = "channelworks-operator"
# How long an answer of discovery is kept: a CRD installed (or removed) after the operator
# started is noticed that much later at most. A few cheap GETs per period, for all apps.
DISCOVERY_TTL_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0

Json = dict[str, Any]

# apiVersion, kind -> plural of every kind the operator reads or writes.
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "Secret"): "secrets",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "Event"): "events",
    ("v1", "Pod"): "pods",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("apps/v1", "ReplicaSet"): "replicasets",
    ("batch/v1", "Job"): "jobs",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobjects",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitors",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitors",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    (realtimeapp.API_VERSION, realtimeapp.KIND): realtimeapp.PLURAL,
}


def object_path(
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/api/v1/namespaces/ns/services/name`` and friends."""
    plural = PLURALS.get((api_version, kind))
    if plural is None:
        raise ValueError(f"unknown kind {kind} of {api_version}")
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = root + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


def describe(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata", {})
    return f"{manifest.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')}"


def load_client(kubeconfig: str | None) -> Any:
    """An ApiClient for $KUBECONFIG (or the given file), else the pod's service account."""
    try:
        return _load_client(kubeconfig)
    except kubernetes.config.ConfigException as error:
        where = kubeconfig or "the pod's service account or ~/.kube/config"
        message = f"failed to load Kubernetes credentials from {where}: {error}"
        raise ConfigurationError(message) from None


def _load_client(kubeconfig: str | None) -> Any:
    configuration = kubernetes.client.Configuration()
    if kubeconfig:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    else:
        try:
            kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    configuration.connection_pool_maxsize = 16
    return kubernetes.client.ApiClient(configuration)


@dataclass(frozen=True)
class Applied:
    """The object as the API server holds it after an apply, and whether the apply made it."""

    object: Json
    created: bool

    @property
    def resource_version(self) -> str:
        return str(self.object.get("metadata", {}).get("resourceVersion", ""))


class Api(Protocol):
    """The adapter the reconcile talks to: what ``Kube`` offers, and what an in-process fake
    of the API server (the operator's tests) implements. Objects are plain dicts; every failure
    is an ``ApiError``; ``get`` answers None for a missing object, ``delete`` False."""

    field_manager: str

    def apply(
        self, manifest: Json, *, subresource: str | None = None, field_manager: str | None = None
    ) -> Applied: ...

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Json | None: ...

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Json]: ...

    def create(self, manifest: Json) -> Json: ...

    def replace(self, manifest: Json) -> Json: ...

    def delete(
        self, api_version: str, kind: str, namespace: str, name: str, uid: str | None = None
    ) -> bool: ...

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int) -> str: ...

    def served_kinds(self, api_version: str) -> frozenset[str] | None: ...

    def serves(self, api_version: str, kind: str) -> bool: ...

    def post_event(
        self,
        involved: Mapping[str, Any],
        *,
        type_: str,
        reason: str,
        message: str,
        instance: str,
    ) -> None: ...


class Kube:
    """Blocking calls to the API server with one ApiClient (thread-safe connection pool)."""

    def __init__(self, api_client: Any, field_manager: str = FIELD_MANAGER) -> None:
        self.api_client = api_client
        self.field_manager = field_manager
        self._discovery: dict[str, tuple[float, frozenset[str] | None]] = {}
        self._discovery_lock = threading.Lock()

    # --- transport -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
    ) -> tuple[int, Json]:
        """One request; the decoded JSON body, or ApiError for any status outside 2xx."""
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        status, data = self._send(method, path, query, headers, body, what)
        decoded: Json = json.loads(data or b"{}")
        return status, decoded

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        header_params: Mapping[str, str],
        body: Any,
        what: str,
    ) -> tuple[int, bytes]:
        """One request; the status and the raw body, or ApiError for any status outside 2xx."""
        url_path = path + ("?" + urllib.parse.urlencode(query) if query else "")
        method, url, headers, body, post = self.api_client.param_serialize(
            method=method,
            resource_path=url_path,
            header_params=dict(header_params),
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api_client.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                post_params=post,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except kubernetes.client.exceptions.ApiException as error:
            raise _api_error(error.status or 0, error.reason or "", error.body, what) from None
        data: bytes = response.read() or b""
        status = int(response.status)
        if not 200 <= status <= 299:
            raise _api_error(status, response.reason or "", data, what)
        return status, data

    # --- objects ---------------------------------------------------------------------------

    def apply(
        self, manifest: Json, *, subresource: str | None = None, field_manager: str | None = None
    ) -> Applied:
        """Server-side apply with our field manager (or ``field_manager``), taking over fields
        others changed."""
        meta = manifest["metadata"]
        path = object_path(
            manifest["apiVersion"],
            manifest["kind"],
            meta.get("namespace"),
            meta["name"],
            subresource,
        )
        try:
            status, obj = self.request(
                "PATCH",
                path,
                query={"fieldManager": field_manager or self.field_manager, "force": "true"},
                body=manifest,
                content_type="application/apply-patch+yaml",
                what=f"apply {describe(manifest)}",
            )
        except ApiError as error:
            if error.not_found:  # apply makes what is missing: the kind is no longer served
                self.forget_discovery(manifest["apiVersion"])
            raise
        return Applied(obj, created=status == 201)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Json | None:
        try:
            return self.request(
                "GET",
                object_path(api_version, kind, namespace, name),
                what=f"get {kind} {namespace}/{name}",
            )[1]
        except ApiError as error:
            if error.not_found:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Json]:
        query = {"labelSelector": label_selector} if label_selector else None
        _, listing = self.request(
            "GET",
            object_path(api_version, kind, namespace),
            query=query,
            what=f"list {kind} in {namespace or 'all namespaces'}",
        )
        items: list[Json] = listing.get("items") or []
        return items

    def create(self, manifest: Json) -> Json:
        """Create (fails with 409 when it exists); our field manager owns what it wrote."""
        meta = manifest["metadata"]
        return self.request(
            "POST",
            object_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace")),
            query={"fieldManager": self.field_manager},
            body=manifest,
            what=f"create {describe(manifest)}",
        )[1]

    def replace(self, manifest: Json) -> Json:
        meta = manifest["metadata"]
        path = object_path(
            manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"]
        )
        return self.request("PUT", path, body=manifest, what=f"update {describe(manifest)}")[1]

    def delete(
        self, api_version: str, kind: str, namespace: str, name: str, uid: str | None = None
    ) -> bool:
        """Delete (in the background); False when it was already gone."""
        body: Json = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request(
                "DELETE",
                object_path(api_version, kind, namespace, name),
                body=body,
                what=f"delete {kind} {namespace}/{name}",
            )
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int) -> str:
        """The last ``tail_lines`` lines a container wrote (text, not JSON)."""
        path = object_path("v1", "Pod", namespace, pod, "log")
        query = {"container": container, "tailLines": str(tail_lines)}
        what = f"read the log of pod {namespace}/{pod}"
        # The API server negotiates the log like any object: "text/plain" alone is refused (406).
        _, data = self._send("GET", path, query, {"Accept": "application/json, */*"}, None, what)
        return data.decode(errors="replace")

    # --- discovery -------------------------------------------------------------------------

    def served_kinds(self, api_version: str) -> frozenset[str] | None:
        """Kinds the API server serves in ``api_version`` (None: the group/version is absent)."""
        now = time.monotonic()
        with self._discovery_lock:
            cached = self._discovery.get(api_version)
            if cached is not None and now - cached[0] < DISCOVERY_TTL_SECONDS:
                return cached[1]
        root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            _, listing = self.request("GET", root, what=f"discover {api_version}")
            kinds: frozenset[str] | None = frozenset(
                str(item.get("kind"))
                for item in listing.get("resources", [])
                if "/" not in str(item.get("name", ""))
            )
        except ApiError as error:
            if error.status not in (404, 503):
                raise
            kinds = None
        with self._discovery_lock:
            self._discovery[api_version] = (now, kinds)
        return kinds

    def forget_discovery(self, api_version: str) -> None:
        """Ask discovery again about ``api_version`` next time (its CRD may have gone)."""
        with self._discovery_lock:
            self._discovery.pop(api_version, None)

    def serves(self, api_version: str, kind: str) -> bool:
        kinds = self.served_kinds(api_version)
        return kinds is not None and kind in kinds

    # --- events ----------------------------------------------------------------------------

    def post_event(
        self,
        involved: Mapping[str, Any],
        *,
        type_: str,
        reason: str,
        message: str,
        instance: str,
    ) -> None:
        """A core/v1 Event about ``involved`` (``kubectl describe`` shows it)."""
        meta = involved["metadata"]
        now = timestamps.now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "action": "Reconcile",
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": instance[:128],
        }
        try:
            self.create(event)
        except ApiError as error:  # an event lost is no reason to fail a reconcile
            logger.warning("failed to post event %s on %s: %s", reason, meta["name"], error)


def _api_error(status: int, reason: str, body: Any, what: str) -> ApiError:
    message = ""
    if isinstance(body, bytes | str):
        try:
            decoded = json.loads(body)
            message = str(decoded.get("message", "")) if isinstance(decoded, dict) else ""
        except ValueError:
            message = body.decode(errors="replace") if isinstance(body, bytes) else body
    return ApiError(status, reason, message.strip()[:2000], what=what)
