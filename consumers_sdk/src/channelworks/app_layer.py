"""One layer configuration for every process of an application.

Interface and worker processes build their layer from the image contract's environment
(``CHANNELWORKS_APP``, ``CHANNELWORKS_REDIS_MODE``, ``CHANNELWORKS_REDIS_URL``,
``CHANNELWORKS_REDIS_PASSWORD``). Any other Django process of the application (``manage.py shell``,
a management command, a WSGI server, a Celery worker) builds the default layer from
``CHANNEL_LAYERS``; these rules keep the two from pointing at different places, where a
``Group(...).send()`` would be stored where no interface or worker ever reads and be lost without
a word:

- with no ``CHANNEL_LAYERS["default"]`` at all, the default layer is the environment's, exactly as
  the worker builds it;
- ``CONFIG["prefix"]`` may be left out: it is the application's name, ``CHANNELWORKS_APP`` (or
  ``channelworks``, the name the interface and worker use when the variable is unset) — never
  the ``asgi`` of channels_redis, which no Channelworks application uses;
- when the environment names the application, a ``CHANNEL_LAYERS["default"]`` that disagrees with
  it (another prefix, another kind of backend than ``CHANNELWORKS_REDIS_MODE``, another Redis
  than a standalone ``CHANNELWORKS_REDIS_URL``) is refused with ``ImproperlyConfigured`` on first
  use, naming both values.

Pure functions: the caller passes the environment and the settings.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from channelworks.exceptions import ConfigurationError
from channelworks.layers import env as layer_env

APP_VARIABLES = ("CHANNELWORKS_APP", "CHANNELWORKS_REDIS_MODE")
_BACKEND_OF_MODE = {
    "memory": "InMemoryChannelLayer",
    "local": "LocalChannelLayer",
    "standalone": "RedisChannelLayer",
    "cluster": "RedisChannelLayer",
    "external": "RedisChannelLayer",
}


def app_settings(env: Mapping[str, str]) -> layer_env.LayerSettings | None:
    """The application's layer settings when the environment names them, else None."""
    if not any(env.get(name, "").strip() for name in APP_VARIABLES):
        return None
    try:
        return layer_env.settings_from_env(env)
    except ConfigurationError as error:
        raise ImproperlyConfigured(str(error)) from error


def app_name(app: layer_env.LayerSettings | None) -> str:
    """The prefix every process of this application uses."""
    return app.app if app is not None else layer_env.LayerSettings().app


def expected_prefix(config: Mapping[str, Any], app: layer_env.LayerSettings | None) -> str:
    """The prefix the default layer of ``CONFIG`` must have under these rules."""
    return str(config.get("prefix") or app_name(app))


def default_layer_config(
    alias: str,
    backend: type,
    config: Mapping[str, Any],
    app: layer_env.LayerSettings | None,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """``CONFIG`` of ``CHANNEL_LAYERS[alias]`` (the default alias) with the application's prefix
    filled in; raise ImproperlyConfigured when it cannot reach the application the environment
    names. ``backend`` is the backend's class."""
    chosen = dict(config)
    prefix = chosen.setdefault("prefix", app_name(app))
    if app is None:
        return chosen
    where = f'CHANNEL_LAYERS["{alias}"]'
    if prefix != app.app:
        raise ImproperlyConfigured(
            f'{where} has CONFIG["prefix"] = {prefix!r}, but this process belongs to the '
            f"application {app.app!r} (CHANNELWORKS_APP): what it sent would be stored where no "
            "interface or worker of the application reads. Leave the prefix out (it is then "
            "CHANNELWORKS_APP) or set it to the same value."
        )
    if env.get("CHANNELWORKS_REDIS_MODE", "").strip():
        expected = _BACKEND_OF_MODE[app.mode]
        if expected not in {kind.__name__ for kind in backend.__mro__}:
            raise ImproperlyConfigured(
                f"{where} uses {backend.__name__}, but CHANNELWORKS_REDIS_MODE={app.mode} puts the "
                f"application's interfaces and workers on a {expected}: messages sent here "
                f"would never reach them. Remove {where} (the layer then comes from the "
                "CHANNELWORKS_* variables) or make it the same layer."
            )
    if app.mode == "standalone" and "hosts" in chosen:
        wanted = _address(app.url)
        given = [_address(_host_url(host)) for host in chosen["hosts"]]
        if wanted not in given:
            raise ImproperlyConfigured(
                f"{where} names Redis at {', '.join(map(_show, given))}, but the application's "
                f"interfaces and workers use {_show(wanted)} (CHANNELWORKS_REDIS_URL): messages "
                f'sent here would never reach them. Remove CONFIG["hosts"] of {where} or name '
                "the same server."
            )
    return chosen


def _host_url(host: Any) -> str:
    if isinstance(host, str):
        return host
    if isinstance(host, Mapping):
        return str(host.get("address", ""))
    if isinstance(host, list | tuple) and len(host) == 2:
        return f"redis://{host[0]}:{host[1]}"
    return str(host)


def _address(url: str) -> tuple[str, int, str]:
    """(host, port, database) of a Redis URL, for comparing two spellings of one server."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"redis://{url}")
    database = parts.path.strip("/") or "0"
    return (parts.hostname or "localhost", parts.port or 6379, database)


def _show(address: tuple[str, int, str]) -> str:
    host, port, database = address
    return f"{host}:{port}/{database}"
