"""``Channel`` and ``Group``: send to a channel, manage and broadcast to a group.

Every operation has a synchronous form (``send``, ``add``, ``discard``) for consumers, views,
models' ``save()``, management commands and WSGI processes, and an awaitable form with Django's
``a`` prefix (``asend``, ``aadd``, ``adiscard``) for ``async def`` code.

``send(..., on_commit=True)`` sends only once the current database transaction commits (and not at
all if it rolls back); outside a transaction it sends at once, as Django's ``on_commit`` does.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from django.db import transaction

from channelworks import DEFAULT_CHANNEL_LAYER, asgi, pending

if TYPE_CHECKING:
    from channelworks.layers import base


def _require_dict(content: object) -> dict[str, Any]:
    if not isinstance(content, dict):
        raise TypeError(
            f"you can only send dicts as content on channels, not {type(content).__name__}"
        )
    return content


def _text(name: str | bytes) -> str:
    return name.decode("ascii") if isinstance(name, bytes) else name


class _Named:
    _kind: ClassVar[Literal["channel", "group"]]  # what a held send delivers to

    def __init__(
        self,
        name: str | bytes,
        alias: str = DEFAULT_CHANNEL_LAYER,
        channel_layer: Any = None,
    ) -> None:
        self.name = _text(name)
        self.alias = alias
        self._layer = None if channel_layer is None else asgi.wrap(channel_layer, alias)

    @property
    def channel_layer(self) -> asgi.ChannelLayerWrapper:
        """The layer this name lives on: the one given, else the alias's layer of the process."""
        return self._layer if self._layer is not None else asgi.channel_layers[self.alias]

    @property
    def _backend(self) -> base.ChannelworksLayer:
        return self.channel_layer.channel_layer

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and getattr(other, "name", None) == self.name

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name))

    def send(
        self,
        content: dict[str, Any],
        immediately: bool = False,
        on_commit: bool = False,
        using: str | None = None,
    ) -> None:
        """Send ``content``; held until the running consumer returns unless ``immediately``.

        ``on_commit=True`` defers the send until the transaction of database ``using`` commits.
        """
        content = _require_dict(content)
        if on_commit:
            frozen = copy.deepcopy(content)
            transaction.on_commit(lambda: self.send(frozen, immediately=True), using=using)
            return
        if not self._held(content, immediately):
            self._deliver(content)

    async def asend(self, content: dict[str, Any], immediately: bool = False) -> None:
        """Async :meth:`send`: held while an ``async def`` consumer runs, unless ``immediately``."""
        content = _require_dict(content)
        if not self._held(content, immediately):
            await self._adeliver(content)

    def _held(self, content: dict[str, Any], immediately: bool) -> bool:
        """Whether the running consumer holds the send until it returns (channelworks.pending)."""
        return not immediately and pending.hold(
            pending.PendingSend(self._backend, self._kind, self.name, content)
        )

    def _deliver(self, content: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _adeliver(self, content: dict[str, Any]) -> None:
        raise NotImplementedError


class Channel(_Named):
    """A named channel to send messages (dicts) to, e.g. ``message.reply_channel``."""

    _kind = "channel"

    def _deliver(self, content: dict[str, Any]) -> None:
        self.channel_layer.send(self.name, content)

    async def _adeliver(self, content: dict[str, Any]) -> None:
        await self._backend.send(self.name, content)


class Group(_Named):
    """A named set of channels; a send reaches every member (e.g. every socket in a chat room),
    with the same ``immediately``/``on_commit`` rules as a Channel's."""

    _kind = "group"

    def add(self, channel: Channel | str) -> None:
        """Add a channel (a ``Channel`` or its name) to the group, at once."""
        self.channel_layer.group_add(self.name, _channel_name(channel))

    def discard(self, channel: Channel | str) -> None:
        """Remove a channel from the group, at once; unknown members are ignored."""
        self.channel_layer.group_discard(self.name, _channel_name(channel))

    async def aadd(self, channel: Channel | str) -> None:
        await self._backend.group_add(self.name, _channel_name(channel))

    async def adiscard(self, channel: Channel | str) -> None:
        await self._backend.group_discard(self.name, _channel_name(channel))

    def _deliver(self, content: dict[str, Any]) -> None:
        self.channel_layer.send_group(self.name, content)

    async def _adeliver(self, content: dict[str, Any]) -> None:
        await self._backend.group_send(self.name, content)


def _channel_name(channel: Channel | str | bytes) -> str:
    if isinstance(channel, Channel):
        return channel.name
    if isinstance(channel, str | bytes):
        return _text(channel)
    raise TypeError(f"expected a Channel or a channel name, got {type(channel).__name__}")
