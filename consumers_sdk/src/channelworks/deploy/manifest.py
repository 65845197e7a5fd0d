"""The ``RealtimeApp`` of a worker image (pure: options in, a dict and YAML text out).

:func:`realtime_app` checks each value against the limits of the CRD
(charts/channelworks/crds/), so a manifest it prints is one the API server accepts, and a value
out of range is reported here, naming the option and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from channelworks.exceptions import ConfigurationError

API_VERSION = "channelworks.dev/v1alpha1"
KIND = "RealtimeApp"
LAYER_MODES = ("cluster", "standalone", "external")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
MAX_NAME = 46
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_REDIS_URL = re.compile(r"^(redis|rediss|redis\+cluster|rediss\+cluster)://\S+$")


@dataclass(frozen=True)
class AppOptions:
    """What a user chooses for a new app; the defaults are the CRD's own."""

    name: str
    image: str
    settings_module: str
    namespace: str | None = None
    routing: str | None = None
    interface_replicas: int = 2
    min_workers: int = 1
    max_workers: int = 10
    concurrency: int = 16
    layer: str = "cluster"
    redis_url: str | None = None
    redis_password_secret: str | None = None
    pull_policy: str | None = None
    secret_key_secret: str | None = None
    hosts: tuple[str, ...] = ()


SECRET_KEY_VARIABLE = "DJANGO_SECRET_KEY"
_HOST = re.compile(r"^\.?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def django_secret_name(options: AppOptions) -> str:
    """The Secret whose ``DJANGO_SECRET_KEY`` the pods get: the one named, else ``<name>-django``
    (which :func:`secret_key_secret` makes)."""
    return options.secret_key_secret or f"{options.name}-django"


def allowed_hosts(options: AppOptions) -> list[str]:
    """``DJANGO_ALLOWED_HOSTS`` of the pods: the app's interface Service by the names a client in
    the cluster uses (qualified ones when the namespace is known), then ``--host`` names (an
    Ingress's host)."""
    service = f"{options.name}-interface"
    names = [service]
    if options.namespace:
        names += [f"{service}.{options.namespace}", f"{service}.{options.namespace}.svc"]
        names.append(f"{service}.{options.namespace}.svc.cluster.local")
    return names + [host for host in options.hosts if host not in names]


def _in_range(value: int, low: int, high: int, option: str) -> None:
    if not low <= value <= high:
        raise ConfigurationError(f"{option} must be between {low} and {high}, got {value}")


def check(options: AppOptions) -> None:
    """Raise :class:`ConfigurationError` for the first value the CRD would refuse."""
    if len(options.name) > MAX_NAME or not _NAME.match(options.name):
        raise ConfigurationError(
            f"--name {options.name!r} is not an app name: at most {MAX_NAME} characters, "
            "lowercase letters, digits and '-', starting with a letter and not ending with '-'"
        )
    if options.namespace is not None and (
        len(options.namespace) > 63 or not _NAMESPACE.match(options.namespace)
    ):
        raise ConfigurationError(
            f"--namespace {options.namespace!r} is not a namespace name (a DNS label: lowercase "
            "letters, digits and '-', at most 63 characters)"
        )
    if not options.image or len(options.image) > 512 or any(c.isspace() for c in options.image):
        raise ConfigurationError(f"--image {options.image!r} is not an image reference")
    _in_range(options.interface_replicas, 0, 1000, "--interface-replicas")
    _in_range(options.min_workers, 0, 1000, "--min-workers")
    _in_range(options.max_workers, 1, 1000, "--max-workers")
    if options.min_workers > options.max_workers:
        raise ConfigurationError(
            f"--min-workers ({options.min_workers}) must not be greater than --max-workers "
            f"({options.max_workers})"
        )
    _in_range(options.concurrency, 1, 1024, "--concurrency")
    if options.layer not in LAYER_MODES:
        raise ConfigurationError(
            f"--layer must be one of {', '.join(LAYER_MODES)}, got {options.layer!r}"
        )
    if options.layer == "external":
        if not options.redis_url or not _REDIS_URL.match(options.redis_url):
            raise ConfigurationError(
                "--layer external needs --redis-url redis://HOST:PORT (or rediss://, "
                "redis+cluster://, rediss+cluster://) without a password in it"
            )
    elif options.redis_url:
        raise ConfigurationError(
            f"--redis-url is only used with --layer external (--layer {options.layer} runs its "
            "own Redis)"
        )
    for host in options.hosts:
        if len(host) > 253 or not _HOST.match(host):
            raise ConfigurationError(
                f"--host {host!r} is not a host name (lowercase letters, digits, '-' and '.'; "
                "a leading '.' matches every subdomain, as in ALLOWED_HOSTS)"
            )
    if options.secret_key_secret is not None and not _NAMESPACE.match(options.secret_key_secret):
        raise ConfigurationError(
            f"--secret-key-secret {options.secret_key_secret!r} is not a Secret name"
        )
    if options.pull_policy is not None and options.pull_policy not in PULL_POLICIES:
        raise ConfigurationError(
            f"--pull-policy must be one of {', '.join(PULL_POLICIES)}, got {options.pull_policy!r}"
        )


def realtime_app(options: AppOptions) -> dict[str, Any]:
    """The RealtimeApp object (checked first)."""
    check(options)
    metadata: dict[str, Any] = {"name": options.name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    env = [
        {"name": "DJANGO_DEBUG", "value": "false"},
        {"name": "DJANGO_ALLOWED_HOSTS", "value": ",".join(allowed_hosts(options))},
    ]
    if options.routing:
        env.append({"name": "CHANNELWORKS_ROUTING", "value": options.routing})
    django: dict[str, Any] = {
        "settingsModule": options.settings_module,
        "env": env,
        "envFrom": [{"secretRef": {"name": django_secret_name(options)}}],
    }
    redis: dict[str, Any] = {"mode": options.layer}
    if options.layer == "external":
        redis["url"] = options.redis_url
    if options.redis_password_secret:
        redis["passwordSecretRef"] = {"name": options.redis_password_secret}
    spec: dict[str, Any] = {"image": options.image}
    if options.pull_policy:
        spec["imagePullPolicy"] = options.pull_policy
    spec |= {
        "django": django,
        "interface": {"replicas": options.interface_replicas},
        "worker": {
            "concurrency": options.concurrency,
            "autoscaling": {
                "minReplicas": options.min_workers,
                "maxReplicas": options.max_workers,
            },
        },
        "channelLayer": {"redis": redis},
    }
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def secret_key_secret(options: AppOptions, key: str) -> dict[str, Any]:
    """The Secret ``<name>-django`` holding ``key`` as ``DJANGO_SECRET_KEY``."""
    metadata: dict[str, Any] = {"name": django_secret_name(options)}
    if options.namespace:
        metadata["namespace"] = options.namespace
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": {SECRET_KEY_VARIABLE: key},
    }


def to_yaml(app: dict[str, Any], secret: dict[str, Any] | None = None) -> str:
    """YAML for ``kubectl apply -f`` (the Secret first, when given), with comments saying where
    it came from."""
    name = app["metadata"]["name"]
    header = (
        f"# RealtimeApp {name}, printed by `channelworks manifest`.\n"
        "# Apply it: kubectl apply -f FILE. Every field: docs/reference/realtimeapp.md.\n"
    )
    text = header
    if secret is not None:
        text += (
            f"# The Secret {secret['metadata']['name']} holds a new random DJANGO_SECRET_KEY.\n"
            "# Keep this file (printing it again makes another key) or name your own Secret\n"
            "# with --secret-key-secret.\n"
        )
        text += yaml.safe_dump(secret, sort_keys=False, default_flow_style=False) + "---\n"
    return text + yaml.safe_dump(app, sort_keys=False, default_flow_style=False)
