"""Channel layers: the ASGI channel-layer API of Channels 4, plus what workers need.

Use one as the ``BACKEND`` of ``CHANNEL_LAYERS``:
``channelworks.layers.InMemoryChannelLayer``, ``channelworks.layers.LocalChannelLayer`` or
``channelworks.layers.RedisChannelLayer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channelworks.layers.base import ChannelworksLayer, WorkReceiver
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.ordering import Delivery
from channelworks.layers.stats import ChannelStats, QueueStats

if TYPE_CHECKING:
    from channelworks.layers.redis.layer import RedisChannelLayer

__all__ = [
    "ChannelStats",
    "ChannelworksLayer",
    "Delivery",
    "InMemoryChannelLayer",
    "LocalChannelLayer",
    "QueueStats",
    "RedisChannelLayer",
    "WorkReceiver",
]


def __getattr__(name: str) -> Any:
    # The Redis and local backends import their clients only when asked for.
    if name == "RedisChannelLayer":
        from channelworks.layers.redis.layer import RedisChannelLayer

        return RedisChannelLayer
    if name == "LocalChannelLayer":
        from channelworks.layers.local import LocalChannelLayer

        return LocalChannelLayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
