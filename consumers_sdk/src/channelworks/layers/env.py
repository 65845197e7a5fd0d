"""The layer an interface or worker process uses, from the image contract's environment.

``main()`` calls :func:`settings_from_env` once and passes the frozen result down;
:func:`build_layer` turns it into a layer without reading the environment again.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from channelworks.exceptions import ConfigurationError
from channelworks.layers.base import ChannelworksLayer
from channelworks.process import env as readers

MODES = ("memory", "local", "standalone", "cluster", "external")
REDIS_MODES = ("standalone", "cluster", "external")
MAX_SHARDS = 1024  # as channelworks.layers.config allows


@dataclass(frozen=True)
class LayerTuning:
    """How soon the layer gives up on a silent address, and how long a process stays ready
    while the layer does not answer (see docs/operating.md, Readiness):

    - ``CHANNELWORKS_REDIS_CONNECT_TIMEOUT`` (``1``): seconds to connect to a Redis node (and,
      on a cluster, for a node to answer a ping or a slot-map read);
    - ``CHANNELWORKS_REDIS_KEEPALIVE_SECONDS`` (``1``): idle seconds before TCP keepalive probes
      (a connection that answers nothing for one second more is dropped);
    - ``CHANNELWORKS_READINESS_GRACE_SECONDS`` (``15``): how long the layer may fail to answer
      before ``/readyz`` says 503;
    - ``CHANNELWORKS_LAYER_SHARDS`` (the layer's default, 16): work shards per normal channel a
      process starts with, until the app's layer records a count (which then wins and follows
      online changes, ``channelworks.layers.redis.sharding``);
    - ``CHANNELWORKS_LAYER_CAPACITY`` / ``CHANNELWORKS_LAYER_EXPIRY``: the layer's channel
      capacity and message expiry (the layer's defaults when unset).
    """

    connect_timeout: float = 1.0
    keepalive_seconds: float = 1.0
    readiness_grace_seconds: float = 15.0
    shards: int | None = None
    capacity: int | None = None
    expiry: float | None = None

    def layer_options(self, mode: str) -> dict[str, Any]:
        """The layer keyword arguments these settings become in ``mode``."""
        options: dict[str, Any] = {}
        if self.capacity is not None:
            options["capacity"] = self.capacity
        if self.expiry is not None:
            options["expiry"] = self.expiry
        if mode not in REDIS_MODES:
            return options
        options["connect_timeout"] = self.connect_timeout
        options["keepalive_seconds"] = self.keepalive_seconds
        if self.shards is not None:
            options["shards"] = self.shards
        return options


def tuning_from_env(env: Mapping[str, str]) -> LayerTuning:
    """Read the ``LayerTuning`` variables; a wrong value names the variable."""
    return LayerTuning(
        connect_timeout=readers.number(env, "CHANNELWORKS_REDIS_CONNECT_TIMEOUT", 1.0, 0.01),
        keepalive_seconds=readers.number(env, "CHANNELWORKS_REDIS_KEEPALIVE_SECONDS", 1.0, 1.0),
        readiness_grace_seconds=readers.number(
            env, "CHANNELWORKS_READINESS_GRACE_SECONDS", 15.0, 0.0
        ),
        shards=readers.integer(env, "CHANNELWORKS_LAYER_SHARDS", None, 1, MAX_SHARDS),
        capacity=readers.integer(env, "CHANNELWORKS_LAYER_CAPACITY", None, minimum=1),
        expiry=readers.number(env, "CHANNELWORKS_LAYER_EXPIRY", None, 0.001),
    )


@dataclass(frozen=True)
class LayerSettings:
    """``CHANNELWORKS_APP`` / ``CHANNELWORKS_REDIS_*`` as read at start-up."""

    app: str = "channelworks"
    mode: str = "memory"
    url: str = ""
    password: str = field(default="", repr=False)
    tuning: LayerTuning = field(default_factory=LayerTuning)

    def redacted_url(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        if parts.password:
            netloc = f":***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        return self.url


def settings_from_env(env: Mapping[str, str]) -> LayerSettings:
    """Read and check the variables; a wrong value names the variable and what is allowed."""
    url = env.get("CHANNELWORKS_REDIS_URL", "").strip()
    # A URL without a mode means one Redis; nothing at all means the in-memory layer.
    mode = readers.choice(env, "CHANNELWORKS_REDIS_MODE", "standalone" if url else "memory", MODES)
    if mode in REDIS_MODES and not url:
        raise ConfigurationError(
            f"CHANNELWORKS_REDIS_MODE={mode} needs CHANNELWORKS_REDIS_URL "
            "(e.g. redis://chat-redis:6379)"
        )
    return LayerSettings(
        app=env.get("CHANNELWORKS_APP", "channelworks").strip() or "channelworks",
        mode=mode,
        url=url,
        password=env.get("CHANNELWORKS_REDIS_PASSWORD", ""),
        tuning=tuning_from_env(env),
    )


def _host(settings: LayerSettings) -> dict[str, Any]:
    host: dict[str, Any] = {"address": settings.url}
    if settings.password and not urllib.parse.urlsplit(settings.url).password:
        host["password"] = settings.password
    return host


def build_layer(settings: LayerSettings, **config: Any) -> ChannelworksLayer:
    """The layer for ``settings``; ``config`` adds layer keys (capacity, expiry...)."""
    config.setdefault("prefix", settings.app)
    for key, value in settings.tuning.layer_options(settings.mode).items():
        config.setdefault(key, value)
    if settings.mode == "memory":
        from channelworks.layers.memory import InMemoryChannelLayer

        return InMemoryChannelLayer(**config)
    if settings.mode == "local":
        from channelworks.layers.local import LocalChannelLayer

        return LocalChannelLayer(**config)
    from channelworks.layers.redis.layer import RedisChannelLayer

    cluster = True if settings.mode == "cluster" else None
    return RedisChannelLayer(hosts=[_host(settings)], cluster=cluster, **config)
