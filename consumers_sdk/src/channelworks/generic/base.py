"""``BaseConsumer``: the class-based consumer all generic consumers build on.

A class-based consumer is routed with ``route_class(MyConsumer, **filters)`` (or
``MyConsumer.as_route(**filters)``); it is instantiated once per message, as
``MyConsumer(message, **kwargs)``, and the constructor runs the method that ``method_mapping``
names for the message's channel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from channelworks import auth, routing, sessions


class BaseConsumer:
    """Maps channels to methods; ``channel_session``/``channel_session_user`` wrap them."""

    #: ``{channel name: method name}``; the channels this consumer is routed on.
    method_mapping: ClassVar[dict[str, str]] = {}
    #: Give handlers ``message.channel_session``.
    channel_session = False
    #: Give handlers ``message.channel_session`` and ``message.user`` from it.
    channel_session_user = False

    def __init__(self, message: Any, **kwargs: Any) -> None:
        self.message = message
        self.kwargs = kwargs
        self.dispatch(message, **kwargs)

    @classmethod
    def channel_names(cls) -> set[str]:
        """The channels this consumer handles (what ``route_class`` routes it on)."""
        return set(cls.method_mapping)

    @classmethod
    def as_route(cls, attrs: dict[str, Any] | None = None, **filters: Any) -> routing.RouteClass:
        """A ``route_class`` for this consumer; ``attrs`` override class attributes for it."""
        if attrs is not None and not isinstance(attrs, dict):
            raise TypeError(f"attrs must be a dict, not {type(attrs).__name__}")
        consumer = type(cls.__name__, (cls,), dict(attrs)) if attrs else cls
        return routing.RouteClass(consumer, **filters)

    def get_handler(self, message: Any, **kwargs: Any) -> Callable[..., Any]:
        """The bound method for the message's channel, with the session decorators applied."""
        try:
            name = self.method_mapping[message.channel.name]
        except KeyError:
            raise ValueError(
                f"{type(self).__name__} has no method for channel {message.channel.name!r}; "
                f"it handles {sorted(self.method_mapping)}"
            ) from None
        handler: Callable[..., Any] = getattr(self, name)
        if self.channel_session_user:
            return auth.channel_session_user(handler)
        if self.channel_session:
            return sessions.channel_session(handler)
        return handler

    def dispatch(self, message: Any, **kwargs: Any) -> Any:
        """Run the handler for ``message``."""
        return self.get_handler(message, **kwargs)(message, **kwargs)
