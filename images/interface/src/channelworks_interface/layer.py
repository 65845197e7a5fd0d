"""Building the channel layer the interface server talks through, from its configuration."""

from __future__ import annotations

from typing import Any

from channelworks import layers
from channelworks.layers import env as layer_env
from channelworks_interface.config import InterfaceConfig


def build_layer(config: InterfaceConfig) -> layers.ChannelworksLayer:
    """The layer ``config`` names, with the app's prefix (the same rules as the worker's)."""
    options: dict[str, Any] = {}
    if config.layer_capacity is not None:
        options["capacity"] = config.layer_capacity
    if config.layer_expiry is not None:
        options["expiry"] = config.layer_expiry
    settings = layer_env.LayerSettings(
        app=config.app,
        mode=config.redis_mode,
        url=config.redis_url or "",
        password=config.redis_password or "",
        tuning=config.layer_tuning,
    )
    return layer_env.build_layer(settings, **options)
