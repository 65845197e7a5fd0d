"""The channel layers of this process, by alias, as Channels 1's ``channels.asgi`` offered them.

``channel_layers[alias]`` is a :class:`ChannelLayerWrapper`: the layer backend plus the synchronous
methods Channels 1 code calls (``send``, ``send_group``, ``group_add``, ``receive_many``...) and the
alias's ``router``. Layers are built from ``settings.CHANNEL_LAYERS`` on first use (the Channels 1
``ROUTING`` key is allowed there), or installed with :meth:`ChannelLayerManager.set` — the worker
installs the layer it built from its environment, the testing kit an in-memory one. An installed
layer is also what Channels 4's ``channels.layers.get_channel_layer()`` returns in this process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from channelworks import DEFAULT_CHANNEL_LAYER, app_layer, bridge, exceptions
from channelworks.layers import base, history, naming
from channelworks.layers import env as layer_env

logger = logging.getLogger(__name__)
LEGACY_BACKENDS = {
    # Channels 1 backends that cannot run under Channels 4, mapped to their Channelworks role.
    "asgi_redis.RedisChannelLayer": "channelworks.layers.RedisChannelLayer",
    "asgi_redis.RedisLocalChannelLayer": "channelworks.layers.RedisChannelLayer",
    "asgiref.inmemory.ChannelLayer": "channelworks.layers.InMemoryChannelLayer",
    "asgi_ipc.IPCChannelLayer": "channelworks.layers.LocalChannelLayer",
}
_BLOCKING_RECEIVE_SECONDS = 5.0


class ChannelLayerWrapper:
    """A layer backend with Channels 1's synchronous API; other attributes pass through."""

    ChannelFull = exceptions.ChannelFull

    def __init__(self, channel_layer: base.ChannelworksLayer, alias: str) -> None:
        self.channel_layer = channel_layer
        self.alias = alias

    @property
    def router(self) -> Any:
        from channelworks import conf

        return conf.get_router(self.alias)

    @property
    def routing(self) -> list[Any]:
        return list(self.router.root.routing)

    def send(self, channel: str, message: dict[str, Any]) -> None:
        layer = self.channel_layer
        bridge.call(lambda: layer.send(channel, message), "channel_layer.send()")

    def send_group(self, group: str, message: dict[str, Any]) -> None:
        layer = self.channel_layer
        bridge.call(lambda: layer.group_send(group, message), "channel_layer.send_group()")

    def group_add(self, group: str, channel: str) -> None:
        layer = self.channel_layer
        bridge.call(lambda: layer.group_add(group, channel), "channel_layer.group_add()")

    def group_discard(self, group: str, channel: str) -> None:
        layer = self.channel_layer
        bridge.call(lambda: layer.group_discard(group, channel), "channel_layer.group_discard()")

    def receive_many(
        self, channels: list[str], block: bool = False
    ) -> tuple[str | None, dict[str, Any] | None]:
        """Channels 1 shape: ``(channel, message)``, or ``(None, None)`` when nothing came."""
        timeout = _BLOCKING_RECEIVE_SECONDS if block else 0.0
        got = bridge.call(lambda: self._receive(channels, timeout), "channel_layer.receive_many()")
        return (None, None) if got is None else got

    async def _receive(
        self, channels: list[str], timeout: float
    ) -> tuple[str, dict[str, Any]] | None:
        layer = self.channel_layer
        try:
            return await layer.receive_many(channels, timeout=timeout)
        except exceptions.InvalidChannelName:
            # A backend may insist on receive() for a process-specific channel (Redis does).
            if len(channels) != 1 or not naming.is_process_specific(channels[0]):
                raise
        try:
            message = await asyncio.wait_for(layer.receive(channels[0]), max(timeout, 0.01))
        except TimeoutError:
            return None
        return channels[0], message

    def new_channel(self, pattern: str = "specific.") -> str:
        layer = self.channel_layer
        prefix = pattern.rstrip("!?") + "." if pattern.endswith(("!", "?")) else pattern
        return bridge.call(lambda: layer.new_channel(prefix), "channel_layer.new_channel()")

    def flush(self) -> None:
        layer = self.channel_layer
        bridge.call(layer.flush, "channel_layer.flush()")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel_layer, name)

    def __repr__(self) -> str:
        return f"<ChannelLayerWrapper {self.alias!r} {type(self.channel_layer).__name__}>"


def wrap(layer: Any, alias: str = DEFAULT_CHANNEL_LAYER) -> ChannelLayerWrapper:
    """Accept a wrapper or a bare backend (what ``channel_layer=`` arguments may be given)."""
    if isinstance(layer, ChannelLayerWrapper):
        return layer
    if isinstance(layer, base.ChannelworksLayer):
        return ChannelLayerWrapper(layer, alias)
    raise TypeError(
        f"expected a Channelworks channel layer or ChannelLayerWrapper, got {type(layer).__name__}"
    )


class ChannelLayerManager:
    """Layers by alias: built from ``CHANNEL_LAYERS`` on demand, or installed with :meth:`set`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._wrappers: dict[str, ChannelLayerWrapper] = {}
        setting_changed.connect(self._setting_changed)

    def _setting_changed(self, setting: str, **kwargs: Any) -> None:
        if setting == "CHANNEL_LAYERS":
            with self._lock:
                self._wrappers.clear()

    @property
    def configs(self) -> dict[str, Any]:
        return dict(getattr(settings, "CHANNEL_LAYERS", None) or {})

    def make_backend(self, alias: str) -> base.ChannelworksLayer:
        """Build the layer ``CHANNEL_LAYERS[alias]`` describes (``BACKEND`` + ``CONFIG``).

        The default alias follows the application the environment names (see
        :mod:`channelworks.app_layer`): built from it when ``CHANNEL_LAYERS`` has no default
        layer, refused when it disagrees with it.
        """
        app = app_layer.app_settings(os.environ) if alias == DEFAULT_CHANNEL_LAYER else None
        try:
            config = self.configs[alias]
        except KeyError:
            if app is not None:
                return layer_env.build_layer(app)
            raise ImproperlyConfigured(
                f"no channel layer {alias!r}: add it to settings.CHANNEL_LAYERS, e.g. "
                f'{{"{alias}": {{"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}}}'
            ) from None
        path = config.get("BACKEND")
        if not isinstance(path, str):
            raise ImproperlyConfigured(f"CHANNEL_LAYERS[{alias!r}] has no BACKEND string")
        try:
            backend_class = import_string(LEGACY_BACKENDS.get(path, path))
        except ImportError as error:
            raise ImproperlyConfigured(
                f"cannot import CHANNEL_LAYERS[{alias!r}] BACKEND {path!r}: {error}"
            ) from error
        if not (
            isinstance(backend_class, type) and issubclass(backend_class, base.ChannelworksLayer)
        ):
            raise ImproperlyConfigured(
                f"CHANNEL_LAYERS[{alias!r}] BACKEND {path!r} is not a Channelworks layer; use "
                "channelworks.layers.InMemoryChannelLayer, LocalChannelLayer or RedisChannelLayer"
            )
        options = dict(config.get("CONFIG", {}))
        if alias == DEFAULT_CHANNEL_LAYER:
            options = app_layer.default_layer_config(alias, backend_class, options, app, os.environ)
        layer: base.ChannelworksLayer = backend_class(**options)
        return layer

    def __getitem__(self, alias: str) -> ChannelLayerWrapper:
        with self._lock:
            wrapper = self._wrappers.get(alias)
            if wrapper is None:
                existing = _channels_registry().backends.get(alias)
                if isinstance(existing, base.ChannelworksLayer) and self._follows_the_app(
                    alias, existing
                ):
                    layer = existing
                else:
                    layer = self.make_backend(alias)
                wrapper = self._install(alias, layer)
            return wrapper

    def _follows_the_app(self, alias: str, layer: base.ChannelworksLayer) -> bool:
        """Whether a layer Channels 4 built from the settings (``get_channel_layer()`` called
        first) has the prefix of the app's rules; if not, ours replaces it in both registries."""
        if alias != DEFAULT_CHANNEL_LAYER or alias not in self.configs:
            return True
        config = self.configs[alias].get("CONFIG", {})
        expected = app_layer.expected_prefix(config, app_layer.app_settings(os.environ))
        return bool(layer.config.prefix == expected)

    def __contains__(self, alias: object) -> bool:
        return alias in self._wrappers or alias in self.configs

    def set(self, alias: str, layer: Any) -> ChannelLayerWrapper | None:
        """Install ``layer`` (a backend or wrapper) for ``alias``; returns the one it replaced."""
        with self._lock:
            old = self._wrappers.get(alias)
            if layer is None:
                self._wrappers.pop(alias, None)
                _channels_registry().backends.pop(alias, None)
            else:
                self._install(alias, wrap(layer, alias).channel_layer)
            return old

    def _install(self, alias: str, layer: base.ChannelworksLayer) -> ChannelLayerWrapper:
        _apply_history_setting(layer)
        wrapper = ChannelLayerWrapper(layer, alias)
        self._wrappers[alias] = wrapper
        _channels_registry().set(alias, layer)
        return wrapper


def _apply_history_setting(layer: base.ChannelworksLayer) -> None:
    """Give ``layer`` the groups that keep a history (``CHANNELWORKS["GROUP_HISTORY"]`` and
    ``["GROUP_HISTORY_TTL"]``): every process of the app installs its layer here, so all of
    them stamp and keep the same groups' messages."""
    ours = getattr(settings, "CHANNELWORKS", None) or {}
    try:
        policy = history.policy_from_settings(
            ours.get("GROUP_HISTORY"), ours.get("GROUP_HISTORY_TTL")
        )
    except exceptions.ConfigurationError as error:
        raise ImproperlyConfigured(str(error)) from error
    if policy.enabled and not layer.supports_recovery:
        logger.warning(
            'CHANNELWORKS["GROUP_HISTORY"] is set, but the %s keeps no history: messages carry '
            "no stream position and reconnecting clients get no recovery (the Redis layer "
            "does both; see docs/delivery.md)",
            type(layer).__name__,
        )
    layer.history_policy = policy


def _channels_registry() -> Any:
    from channels import layers as channels_layers

    return channels_layers.channel_layers


channel_layers = ChannelLayerManager()


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> base.ChannelworksLayer:
    """The layer backend for ``alias`` (Channels 1's ``channels.asgi.get_channel_layer``)."""
    return channel_layers[alias].channel_layer
