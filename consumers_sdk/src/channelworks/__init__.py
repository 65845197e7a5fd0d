"""Channelworks: Django Channels 1's programming model on a scalable channel layer.

``from channelworks import Channel, Group, route, route_class, include`` — the names a Channels 1
project imports from ``channels``. Submodules keep Channels 1's paths: ``channelworks.auth``,
``channelworks.sessions``, ``channelworks.generic.websockets``, ``channelworks.message``,
``channelworks.routing``, ``channelworks.handler``, ``channelworks.test``
(``channelworks.testing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The alias of the layer used when none is named: Channels' own constant (the alias its
# get_channel_layer() defaults to, and Channels 1's channels.DEFAULT_CHANNEL_LAYER), defined there
# once and named here for the code that ports from Channels 1.
from channels import DEFAULT_CHANNEL_LAYER

if TYPE_CHECKING:
    from channelworks.asgi import channel_layers
    from channelworks.channel import Channel, Group
    from channelworks.routing import include, route, route_class

__all__ = [
    "DEFAULT_CHANNEL_LAYER",
    "Channel",
    "Group",
    "channel_layers",
    "include",
    "route",
    "route_class",
]

_LAZY = {
    "Channel": "channelworks.channel",
    "Group": "channelworks.channel",
    "channel_layers": "channelworks.asgi",
    "route": "channelworks.routing",
    "route_class": "channelworks.routing",
    "include": "channelworks.routing",
}


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import channelworks.layers` needs no Django settings.
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
