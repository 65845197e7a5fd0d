"""What Django needs from the cluster to run safely (pure): a ``SECRET_KEY`` and the host names
clients use, as the variables the project's settings read (``channelworks init``'s template and
the examples: ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS``).

- ``DJANGO_SECRET_KEY``: from the Secret ``spec.django.secretKeySecretRef`` names, else from the
  Secret ``<app>-secret-key`` that the operator generates once (``references.django_secret_key``)
  and loads first in the workers' ``envFrom``, so that a ``DJANGO_SECRET_KEY`` of the user's own
  (``django.env``, or a Secret in ``django.envFrom``) still wins.
- ``DJANGO_ALLOWED_HOSTS``: the interface Service's names (``<app>-interface``, with the
  namespace, ``.svc`` and ``.svc.cluster.local``) and the hosts of the Ingresses that route to
  it; a ``DJANGO_ALLOWED_HOSTS`` in ``django.env`` replaces it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from channelworks_operator import spec
from channelworks_operator.builders import meta

Manifest = meta.Manifest

SECRET_KEY_VARIABLE = "DJANGO_SECRET_KEY"
ALLOWED_HOSTS_VARIABLE = "DJANGO_ALLOWED_HOSTS"
DJANGO = "django"  # the component label of the generated Secret


def secret_key_name(app: spec.AppRef) -> str:
    return f"{app.name}-secret-key"


def owns_secret_key(app: spec.App) -> bool:
    """True when the operator generates the key (no Secret named in the spec)."""
    return app.django_secret_key is None


def secret_key_secret(app: spec.App, key: str) -> Manifest:
    """The generated key; made once and never rewritten (reconcile creates it if missing)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta.metadata(app.ref, secret_key_name(app.ref), DJANGO),
        "type": "Opaque",
        "data": {SECRET_KEY_VARIABLE: base64.b64encode(key.encode()).decode()},
    }


def allowed_hosts(app: spec.AppRef, ingress_hosts: Iterable[str] = ()) -> list[str]:
    """The interface Service by every name a client in the cluster uses, then Ingress hosts."""
    service = meta.interface_name(app)
    names = [
        service,
        f"{service}.{app.namespace}",
        f"{service}.{app.namespace}.svc",
        f"{service}.{app.namespace}.svc.cluster.local",
    ]
    return names + sorted({host for host in ingress_hosts if host not in names})


def ingress_hosts(app: spec.AppRef, ingresses: Iterable[Mapping[str, Any]]) -> list[str]:
    """The hosts of the Ingresses with a rule (or default backend) to the interface Service, as
    Django's ALLOWED_HOSTS spells them (``*.example.com`` is ``.example.com``)."""
    service = meta.interface_name(app)
    hosts: set[str] = set()
    for ingress in ingresses:
        body = ingress.get("spec") or {}
        default = ((body.get("defaultBackend") or {}).get("service") or {}).get("name")
        for rule in body.get("rules") or []:
            backends = [
                ((path.get("backend") or {}).get("service") or {}).get("name")
                for path in (rule.get("http") or {}).get("paths") or []
            ]
            host = str(rule.get("host") or "")
            if host and (service in backends or (not backends and default == service)):
                hosts.add("." + host[2:] if host.startswith("*.") else host)
    return sorted(hosts)


def env(app: spec.App, ingress: Iterable[str]) -> list[dict[str, Any]]:
    """The workers' variables (before ``django.env``, which may replace them)."""
    found: list[dict[str, Any]] = [
        {"name": ALLOWED_HOSTS_VARIABLE, "value": ",".join(allowed_hosts(app.ref, ingress))}
    ]
    ref = app.django_secret_key
    if ref is not None:
        selector = {"name": ref.name, "key": ref.key}
        found.append({"name": SECRET_KEY_VARIABLE, "valueFrom": {"secretKeyRef": selector}})
    return found


def env_from(app: spec.App) -> list[dict[str, Any]]:
    """The generated key's Secret, first in ``envFrom`` (the user's sources come after it)."""
    if not owns_secret_key(app):
        return []
    return [{"secretRef": {"name": secret_key_name(app.ref)}}]
