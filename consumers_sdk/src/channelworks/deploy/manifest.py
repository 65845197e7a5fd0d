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

from channelworks import realtimeapp
from channelworks.exceptions import ConfigurationError

LAYER_MODES = ("cluster", "standalone", "external")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
LOCAL_PULL_POLICY = "IfNotPresent"  # for a localhost/ image without --pull-policy
# A project's image is named under localhost/ unless a tag is given (project.default_image): the
# name podman and buildah store a name without a registry under, which docker and Kubernetes keep
# as written, so the image build makes is the one the manifest names, on every engine and node,
# and is never looked up on a public registry.
LOCAL_REGISTRY = "localhost"
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


_HOST = re.compile(r"^\.?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def allowed_hosts(options: AppOptions) -> list[str]:
    """``DJANGO_ALLOWED_HOSTS`` of the pods when ``--host`` names more: the app's interface
    Service by the names a client in the cluster uses (qualified ones when the namespace is
    known), then the ``--host`` names (an Ingress's host). Without ``--host`` the manifest sets
    none: the operator gives the workers the Service's names and the hosts of the Ingresses that
    route to it."""
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


def is_local_image(image: str) -> bool:
    """Whether ``image`` is named as built on this machine (``localhost/...``): no registry has
    it, so a node can only use it when it is loaded there, never pull it."""
    registry, slash, _ = image.partition("/")
    return bool(slash) and registry == LOCAL_REGISTRY


def realtime_app(options: AppOptions) -> dict[str, Any]:
    """The RealtimeApp object (checked first)."""
    check(options)
    metadata: dict[str, Any] = {"name": options.name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    env = [{"name": "DJANGO_DEBUG", "value": "false"}]
    if options.hosts:
        env.append({"name": "DJANGO_ALLOWED_HOSTS", "value": ",".join(allowed_hosts(options))})
    if options.routing:
        env.append({"name": "CHANNELWORKS_ROUTING", "value": options.routing})
    django: dict[str, Any] = {"settingsModule": options.settings_module, "env": env}
    if options.secret_key_secret:
        # Else the operator makes the Secret <name>-secret-key with a random key, once.
        django["secretKeySecretRef"] = {"name": options.secret_key_secret}
    redis: dict[str, Any] = {"mode": options.layer}
    if options.layer == "external":
        redis["url"] = options.redis_url
    if options.redis_password_secret:
        redis["passwordSecretRef"] = {"name": options.redis_password_secret}
    spec: dict[str, Any] = {"image": options.image}
    if options.pull_policy:
        spec["imagePullPolicy"] = options.pull_policy
    elif is_local_image(options.image):
        # Built here, in no registry: a node uses the copy loaded into it. Kubernetes' default
        # for a :latest tag (Always) would try to pull it and fail.
        spec["imagePullPolicy"] = LOCAL_PULL_POLICY
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
    return {
        "apiVersion": realtimeapp.API_VERSION,
        "kind": realtimeapp.KIND,
        "metadata": metadata,
        "spec": spec,
    }


def to_yaml(app: dict[str, Any]) -> str:
    """YAML for ``kubectl apply -f``, with comments saying where it came from."""
    name = app["metadata"]["name"]
    django = app["spec"]["django"]
    secret = django.get("secretKeySecretRef", {}).get("name")
    where = (
        f"# SECRET_KEY: the key DJANGO_SECRET_KEY of your Secret {secret}.\n"
        if secret
        else f"# SECRET_KEY: the operator makes the Secret {name}-secret-key with a random key.\n"
    )
    return (
        f"# RealtimeApp {name}, printed by `channelworks manifest`.\n"
        "# Apply it: kubectl apply -f FILE. Every field: docs/reference/realtimeapp.md.\n"
        + where
        + yaml.safe_dump(app, sort_keys=False, default_flow_style=False)
    )
