"""kopf wiring: which events call ``Reconciler.reconcile``, and kopf's settings.

Everything is registered on a registry made here (nothing at import time). Handlers:

- RealtimeApp created, updated (spec or metadata) or found at start-up (resume) -> reconcile;
- every RealtimeApp watch event -> the reconciler's list of apps (for its resync loop);
- Deployments, StatefulSets and (migration) Jobs labelled ``managed-by=channelworks-operator`` ->
  their app is looked at again soon (readiness in the status quickly; a deleted child put back
  at once; a finished migration rolls the app).

There is no timer handler on purpose: kopf timers put a finalizer on every object, and the
conventions keep finalizers for state outside Kubernetes. ``resync.Resync`` does the periodic
part. Errors map to kopf's retry policy: ``InvalidSpec`` -> ``PermanentError``,
``Blocked`` -> ``TemporaryError(delay)``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from channelworks_operator import spec
from channelworks_operator.builders import meta
from channelworks_operator.config import OperatorConfig
from channelworks_operator.exceptions import Blocked, InvalidSpec
from channelworks_operator.reconcile import Reconciler
from channelworks_operator.resync import Resync

ANNOTATION_PREFIX = "channelworks.dev"


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """kopf's settings for this operator (applied in the startup handler)."""
    # Handler progress and the last handled spec live in annotations, never in our status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Our own Events say what happened (once each); kopf would post one per retry as well.
    settings.posting.enabled = False
    # No scanning of CRDs or namespaces: the resources are known, the namespaces given.
    settings.scanning.disabled = True
    settings.execution.max_workers = max(4, config.max_concurrent_reconciles)
    settings.networking.request_timeout = 60.0
    settings.watching.server_timeout = 300
    settings.batching.error_delays = (1, 2, 5, 10, 30, 60)
    # Stop quickly on SIGTERM: a new leader takes over anyway, and reconciles are idempotent.
    settings.batching.exit_timeout = 0.5


def login_from(api_client: Any) -> kopf.ConnectionInfo:
    """kopf's credentials from the same client configuration the operator's own calls use."""
    config = api_client.configuration
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
        "authorization"
    )
    scheme, token = None, None
    if header:
        parts = header.split(" ", 1)
        scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


async def _reconcile(reconciler: Reconciler, body: Any, config: OperatorConfig) -> None:
    try:
        await reconciler.reconcile(body, full=True)
    except InvalidSpec as error:
        raise kopf.PermanentError(f"invalid spec: {error}") from None
    except Blocked as blocked:
        raise kopf.TemporaryError(str(blocked), delay=blocked.delay) from None


def build_registry(
    reconciler: Reconciler,
    resync: Resync,
    config: OperatorConfig,
    api_client: Any,
    stopping: asyncio.Event,
) -> kopf.OperatorRegistry:
    """The handlers; ``stopping`` is set when kopf begins to stop (the resync loop ends then)."""
    registry = kopf.OperatorRegistry()
    resource = (spec.GROUP, spec.VERSION, spec.PLURAL)
    managed = {meta.MANAGED_BY_LABEL: meta.MANAGED_BY}
    backoff = config.retry_delay_seconds

    @kopf.on.startup(registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, config)

    @kopf.on.cleanup(registry=registry)
    def cleanup(**_: Any) -> None:
        stopping.set()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return login_from(api_client)

    @kopf.on.resume(*resource, registry=registry, backoff=backoff, id="reconcile")
    @kopf.on.create(*resource, registry=registry, backoff=backoff, id="reconcile")
    @kopf.on.update(*resource, registry=registry, backoff=backoff, id="reconcile")
    async def changed(body: kopf.Body, **_: Any) -> None:
        await _reconcile(reconciler, body, config)

    @kopf.on.event(*resource, registry=registry)
    async def app_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        await resync.observe(event.get("type"), body)

    @kopf.on.event("apps", "v1", "deployments", labels=managed, registry=registry)
    @kopf.on.event("apps", "v1", "statefulsets", labels=managed, registry=registry)
    @kopf.on.event("batch", "v1", "jobs", labels=managed, registry=registry)
    async def child_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        resync.poke(body, deleted=event.get("type") == "DELETED")

    return registry
