"""Where the routing of a project is found, and the process's routers by layer alias.

The routing is named (a dotted path to a list, or the list itself) by, in this order:

1. ``settings.CHANNELWORKS["ROUTING"]`` (for the ``default`` alias), or
   ``settings.CHANNELWORKS["ROUTINGS"][alias]``;
2. ``settings.CHANNEL_LAYERS[alias]["ROUTING"]`` — where a Channels 1 project already has it.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from channelworks import DEFAULT_CHANNEL_LAYER, routing

_lock = threading.Lock()
_routers: dict[str, routing.Router] = {}


def routing_setting(alias: str = DEFAULT_CHANNEL_LAYER) -> Any:
    """The routing the settings name for ``alias`` (a dotted path or a list), or None."""
    ours = getattr(settings, "CHANNELWORKS", None) or {}
    by_alias = ours.get("ROUTINGS") or {}
    if alias in by_alias:
        return by_alias[alias]
    if alias == DEFAULT_CHANNEL_LAYER and "ROUTING" in ours:
        return ours["ROUTING"]
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    return (layers.get(alias) or {}).get("ROUTING")


def get_router(alias: str = DEFAULT_CHANNEL_LAYER) -> routing.Router:
    """The router for ``alias``, built once from the settings (with the default routes)."""
    with _lock:
        router = _routers.get(alias)
        if router is None:
            configured = routing_setting(alias)
            if configured is None:
                raise ImproperlyConfigured(
                    f"no routing for channel layer {alias!r}: set CHANNELWORKS = "
                    '{"ROUTING": "myproject.routing.channel_routing"} (or the Channels 1 '
                    f'CHANNEL_LAYERS["{alias}"]["ROUTING"]) in your settings'
                )
            router = routing.Router(configured)
            _routers[alias] = router
        return router


def set_router(alias: str, router: routing.Router | None) -> routing.Router | None:
    """Install ``router`` for ``alias`` (None: rebuild from settings next time); returns the old."""
    with _lock:
        old = _routers.pop(alias, None)
        if router is not None:
            _routers[alias] = router
        return old


def _setting_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("CHANNELWORKS", "CHANNEL_LAYERS"):
        with _lock:
            _routers.clear()


setting_changed.connect(_setting_changed)
