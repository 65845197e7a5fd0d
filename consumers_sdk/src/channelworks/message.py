"""``Message``: what a consumer is called with (Channels 1's ``channels.message.Message``)."""

from __future__ import annotations

import copy
from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import TYPE_CHECKING, Any

from channelworks import asgi
from channelworks import channel as channel_module

if TYPE_CHECKING:
    from channelworks.asgi import ChannelLayerWrapper


class Message:
    """A message taken from a channel.

    ``message.content`` is the dict; ``message["key"]``, ``"key" in message``, ``.get()``,
    ``.keys()``, ``.items()`` read it. ``message.channel`` is the :class:`Channel` it came on and
    ``message.reply_channel`` the connection's reply channel (``None`` if the message has none).
    Decorators add ``message.channel_session``, ``message.http_session`` and ``message.user``.
    """

    # Set by the session and auth decorators; absent (hasattr() is False) until then.
    channel_session: Any
    http_session: Any
    user: Any

    def __init__(self, content: dict[str, Any], channel_name: str, channel_layer: Any) -> None:
        self.content = content
        self.channel_layer: ChannelLayerWrapper = asgi.wrap(channel_layer)
        self.channel = channel_module.Channel(channel_name, channel_layer=self.channel_layer)
        reply = content.get("reply_channel")
        self.reply_channel: channel_module.Channel | None = (
            channel_module.Channel(reply, channel_layer=self.channel_layer) if reply else None
        )

    def __getitem__(self, key: str) -> Any:
        return self.content[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.content[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.content

    def __iter__(self) -> Iterator[str]:
        return iter(self.content)

    def keys(self) -> KeysView[str]:
        return self.content.keys()

    def values(self) -> ValuesView[Any]:
        return self.content.values()

    def items(self) -> ItemsView[str, Any]:
        return self.content.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self.content.get(key, default)

    def copy(self) -> Message:
        """A copy whose content can be changed without touching this message."""
        return type(self)(copy.deepcopy(self.content), self.channel.name, self.channel_layer)

    def __repr__(self) -> str:
        return f"<Message on {self.channel.name!r} keys={sorted(self.content)}>"
