"""kopf wiring: kopf watches, the resync loop schedules; and kopf's settings.

Everything is registered on a registry made here (nothing at import time). Handlers:

- every RealtimeApp watch event (the listing at start-up, then each change) -> the resync
  loop's list of apps (``Resync.observe``), which reconciles a new or changed app at once;
- Deployments, StatefulSets and (migration) Jobs labelled ``managed-by=channelworks-operator`` ->
  their app is looked at again soon (readiness in the status quickly; a deleted child put back
  at once; a finished migration rolls the app).

There are no create/update/resume handlers and no timer on purpose: ``resync.Resync`` is the one
scheduler with one retry policy (kopf's change handlers retried the same reconcile with a
backoff of their own, and wrote their progress into the app's annotations), and kopf timers put
a finalizer on every object, which the conventions keep for state outside Kubernetes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from channelworks_operator import spec
from channelworks_operator.builders import meta
from channelworks_operator.resync import Resync


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings for this operator (applied in the startup handler)."""
    # Our own Events say what happened (once each).
    settings.posting.enabled = False
    # No scanning of CRDs or namespaces: the resources are known, the namespaces given.
    settings.scanning.disabled = True
    settings.networking.request_timeout = 60.0
    settings.watching.server_timeout = 300
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


def build_registry(
    resync: Resync,
    api_client: Any,
    stopping: asyncio.Event,
) -> kopf.OperatorRegistry:
    """The handlers; ``stopping`` is set when kopf begins to stop (the resync loop ends then)."""
    registry = kopf.OperatorRegistry()
    resource = (spec.GROUP, spec.VERSION, spec.PLURAL)
    managed = {meta.MANAGED_BY_LABEL: meta.MANAGED_BY}

    @kopf.on.startup(registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)

    @kopf.on.cleanup(registry=registry)
    def cleanup(**_: Any) -> None:
        stopping.set()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return login_from(api_client)

    @kopf.on.event(*resource, registry=registry)
    async def app_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        await resync.observe(event.get("type"), body)

    @kopf.on.event("apps", "v1", "deployments", labels=managed, registry=registry)
    @kopf.on.event("apps", "v1", "statefulsets", labels=managed, registry=registry)
    @kopf.on.event("batch", "v1", "jobs", labels=managed, registry=registry)
    async def child_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        resync.poke(body, deleted=event.get("type") == "DELETED")

    return registry
