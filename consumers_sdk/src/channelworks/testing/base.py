"""Test cases, a channel client and route overrides (Channels 1's ``channels.test.base``).

Everything runs in the test's own thread against an in-memory layer: no Redis, no worker, no
interface server. A sync consumer runs in the calling thread (so it sees the test's database
transaction); an ``async def`` consumer runs to completion before ``consume`` returns.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core import signals as django_signals
from django.db import close_old_connections
from django.test import testcases

from channelworks import DEFAULT_CHANNEL_LAYER, asgi, conf, dispatch, routing
from channelworks import channel as channel_module
from channelworks import message as message_module
from channelworks.layers import memory

T = TypeVar("T")


@contextmanager
def in_memory_layer(
    alias: str = DEFAULT_CHANNEL_LAYER, **config: Any
) -> Iterator[asgi.ChannelLayerWrapper]:
    """Install a fresh in-memory layer for ``alias`` for the duration of the block."""
    old = asgi.channel_layers.set(alias, memory.InMemoryChannelLayer(**config))
    try:
        yield asgi.channel_layers[alias]
    finally:
        asgi.channel_layers.set(alias, old)


def next_message(channel: str, alias: str = DEFAULT_CHANNEL_LAYER) -> message_module.Message | None:
    """The next message waiting on ``channel`` (without blocking), or None."""
    layer = asgi.channel_layers[alias]
    name, content = layer.receive_many([channel])
    if name is None or content is None:
        return None
    return message_module.Message(content, name, layer)


@contextmanager
def keeping_connections() -> Iterator[None]:
    """Don't let request signals close the test's database connection (as Django's test Client)."""
    hooks = (django_signals.request_started, django_signals.request_finished)
    disconnected = [hook for hook in hooks if hook.disconnect(close_old_connections)]
    try:
        yield
    finally:
        for hook in disconnected:
            hook.connect(close_old_connections)


class ChannelTestCaseMixin:
    """Gives each test a fresh in-memory layer for every alias in ``test_channel_aliases``."""

    test_channel_aliases: list[str] = [DEFAULT_CHANNEL_LAYER]  # noqa: RUF012
    _channelworks_saved: dict[str, Any]

    @classmethod
    def _pre_setup(cls) -> None:
        super()._pre_setup()  # type: ignore[misc]
        cls._channelworks_saved = {
            alias: asgi.channel_layers.set(alias, memory.InMemoryChannelLayer())
            for alias in cls.test_channel_aliases
        }

    def _post_teardown(self) -> None:
        try:
            super()._post_teardown()  # type: ignore[misc]
        finally:
            for alias, old in type(self)._channelworks_saved.items():
                asgi.channel_layers.set(alias, old)

    def get_next_message(
        self, channel: str, alias: str = DEFAULT_CHANNEL_LAYER, require: bool = False
    ) -> message_module.Message | None:
        """The next message sent to ``channel`` during the test; ``require`` fails without one."""
        found = next_message(channel, alias)
        if found is None and require:
            raise AssertionError(f"expected a message on channel {channel}, got none")
        return found


class ChannelTestCase(ChannelTestCaseMixin, testcases.TestCase):  # type: ignore[misc]
    """Django ``TestCase`` (each test in a transaction) with an in-memory channel layer."""


class TransactionChannelTestCase(ChannelTestCaseMixin, testcases.TransactionTestCase):  # type: ignore[misc]
    """Django ``TransactionTestCase`` (real commits, ``on_commit`` fires), in-memory layer."""


class Client:
    """Sends messages as one connection would and runs the routed consumers on them."""

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        self.alias = alias
        self.reply_channel = f"test.client!{secrets.token_hex(6)}"

    @property
    def channel_layer(self) -> asgi.ChannelLayerWrapper:
        return asgi.channel_layers[self.alias]

    @property
    def runner(self) -> dispatch.Runner:
        return dispatch.Runner(
            conf.get_router(self.alias), self.channel_layer, close_connections=False
        )

    def get_next_message(self, channel: str) -> message_module.Message | None:
        return next_message(channel, self.alias)

    def get_consumer_by_channel(self, channel: str) -> Any:
        """The consumer a message on ``channel`` with no other fields would go to."""
        found = conf.get_router(self.alias).resolve(channel, {})
        return None if found is None else found.consumer

    def send(self, to: str, content: dict[str, Any] | None = None) -> None:
        """Send ``content`` to channel ``to``, with this client's ``reply_channel``."""
        content = dict(content or {})
        content.setdefault("reply_channel", self.reply_channel)
        self.channel_layer.send(to, content)

    def consume(self, channel: str, fail_on_none: bool = True) -> dispatch.Outcome | None:
        """Take the next message on ``channel`` and run its consumer; its exceptions propagate."""
        found = self.get_next_message(channel)
        if found is None:
            if fail_on_none:
                raise AssertionError(f"no message on channel {channel}")
            return None
        with keeping_connections():
            outcome = self.runner.dispatch_sync(channel, found.content)
        if outcome.status == "unrouted" and fail_on_none:
            raise AssertionError(f"no route for message {found.content!r} on {channel}")
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def send_and_consume(
        self, channel: str, content: dict[str, Any] | None = None, fail_on_none: bool = True
    ) -> dispatch.Outcome | None:
        """:meth:`send` then :meth:`consume` — one message's whole trip through a worker."""
        self.send(channel, content)
        return self.consume(channel, fail_on_none=fail_on_none)

    def receive(self) -> dict[str, Any] | None:
        """The next message sent to this client's reply channel, or None."""
        found = self.get_next_message(self.reply_channel)
        return None if found is None else found.content

    def join_group(self, group_name: str) -> None:
        channel_module.Group(group_name, alias=self.alias).add(self.reply_channel)


class apply_routes:
    """Use ``routes`` instead of the settings' routing (a context manager or decorator)."""

    def __init__(self, routes: Any, aliases: list[str] | None = None) -> None:
        self.routes = routes
        self.aliases = aliases or [DEFAULT_CHANNEL_LAYER]
        self._old: dict[str, routing.Router | None] = {}

    def enter(self) -> None:
        routes = self.routes if isinstance(self.routes, list | tuple) else [self.routes]
        for alias in self.aliases:
            self._old[alias] = conf.set_router(alias, routing.Router(list(routes)))

    def exit(self, *exc_info: object) -> None:
        for alias in self.aliases:
            conf.set_router(alias, self._old.pop(alias, None))

    __enter__ = enter
    __exit__ = exit

    def __call__(self, func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> T:
            with self:
                return func(*args, **kwargs)

        return inner
