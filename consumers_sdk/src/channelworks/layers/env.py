"""The layer an interface or worker process uses, from the image contract's environment.

``main()`` calls :func:`settings_from_env` once and passes the frozen result down;
:func:`build_layer` turns it into a layer without reading the environment again.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channelworks.exceptions import ConfigurationError
from channelworks.layers.base import ChannelworksLayer

MODES = ("memory", "local", "standalone", "cluster", "external")


@dataclass(frozen=True)
class LayerSettings:
    """``CHANNELWORKS_APP`` / ``CHANNELWORKS_REDIS_*`` as read at start-up."""

    app: str = "channelworks"
    mode: str = "memory"
    url: str = ""
    password: str = ""

    def redacted_url(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        if parts.password:
            netloc = f":***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        return self.url


def settings_from_env(env: Mapping[str, str]) -> LayerSettings:
    """Read and check the variables; a wrong value names the variable and what is allowed."""
    mode = env.get("CHANNELWORKS_REDIS_MODE", "memory").strip().lower() or "memory"
    if mode not in MODES:
        raise ConfigurationError(
            f"CHANNELWORKS_REDIS_MODE={mode!r} is not one of {', '.join(MODES)}"
        )
    url = env.get("CHANNELWORKS_REDIS_URL", "").strip()
    if mode in ("standalone", "cluster", "external") and not url:
        raise ConfigurationError(
            f"CHANNELWORKS_REDIS_MODE={mode} needs CHANNELWORKS_REDIS_URL "
            "(e.g. redis://chat-redis:6379)"
        )
    return LayerSettings(
        app=env.get("CHANNELWORKS_APP", "channelworks").strip() or "channelworks",
        mode=mode,
        url=url,
        password=env.get("CHANNELWORKS_REDIS_PASSWORD", ""),
    )


def _host(settings: LayerSettings) -> dict[str, Any]:
    host: dict[str, Any] = {"address": settings.url}
    if settings.password and not urllib.parse.urlsplit(settings.url).password:
        host["password"] = settings.password
    return host


def build_layer(settings: LayerSettings, **config: Any) -> ChannelworksLayer:
    """The layer for ``settings``; ``config`` adds layer keys (capacity, expiry...)."""
    config.setdefault("prefix", settings.app)
    if settings.mode == "memory":
        from channelworks.layers.memory import InMemoryChannelLayer

        return InMemoryChannelLayer(**config)
    if settings.mode == "local":
        from channelworks.layers.local import LocalChannelLayer

        return LocalChannelLayer(**config)
    from channelworks.layers.redis.layer import RedisChannelLayer

    cluster = True if settings.mode == "cluster" else None
    return RedisChannelLayer(hosts=[_host(settings)], cluster=cluster, **config)
