"""Routing: which consumer handles a message (Channels 1's ``route``/``route_class``/``include``).

A routing is a list of routes, tried in order; the first that matches wins.

- ``route(channel, consumer, **filters)``: ``channel`` is a name (or a list of names); each filter
  is a regex matched (``re.match``, anchored at the start) against that field of the message, e.g.
  ``path=r"^/chat/(?P<room>[^/]+)/$"``. Named groups become keyword arguments of the consumer;
  positional groups are refused. A message without the field does not match.
- ``route_class(ConsumerClass, **filters)``: the channels are the class's ``channel_names()``.
- ``include(routing_or_dotted_path, **filters)``: the filters must match a *prefix* of the field;
  the matched prefix is cut off for the included routes (``include(r, path=r"^/liveblog")`` and
  ``route(..., path=r"^/stream/$")`` inside match ``/liveblog/stream/``).

A consumer may be given as a dotted path; ``"django"`` names the Django view handler.

A :class:`Router` remembers what it resolved for the last ``ROUTE_CACHE_SIZE`` distinct
combinations of channel and filtered field values (a connection's messages share their path), so
most messages skip the regexes. It needs routes made of ``route``, ``route_class`` and
``include`` only (another routable object is asked every time), and a routing changed through
:meth:`Router.add_route`, not by editing its lists in place.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from channelworks import exceptions

if TYPE_CHECKING:
    from channelworks.message import Message

Consumer = Callable[..., Any]
ROUTE_CACHE_SIZE = 1024
_ABSENT = object()


@dataclass(frozen=True)
class Resolution:
    """The consumer a message goes to, the keyword arguments from filters, and the route."""

    consumer: Consumer
    kwargs: dict[str, Any]
    route: Route = field(repr=False)


class Routable(Protocol):
    def resolve(self, channel: str, fields: Mapping[str, Any]) -> Resolution | None: ...

    def channel_names(self) -> set[str]: ...


def _import(dotted: str, what: str) -> Any:
    module_name, _, attribute = dotted.rpartition(".")
    if not module_name:
        raise exceptions.InvalidRoute(f"{what} {dotted!r} is not a dotted path (module.name)")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise exceptions.InvalidRoute(f"cannot import {what} {dotted!r}: {error}") from error


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else str(value)


def _compile(name: str, pattern: str | bytes | re.Pattern[str]) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str | bytes):
        raise exceptions.InvalidRoute(
            f"filter {name}= must be a regex string, not {type(pattern).__name__}"
        )
    try:
        return re.compile(_text(pattern))
    except re.error as error:
        raise exceptions.InvalidRoute(
            f"filter {name}={pattern!r} is not a regex: {error}"
        ) from error


def _compile_filters(filters: Mapping[str, Any], owner: str) -> dict[str, re.Pattern[str]]:
    compiled = {name: _compile(name, value) for name, value in filters.items()}
    for name, regex in compiled.items():
        if regex.groups != len(regex.groupindex):
            raise exceptions.InvalidRoute(
                f"filter {name}={regex.pattern!r} on {owner} has positional groups; only named "
                "groups (?P<name>...) are allowed, they become consumer keyword arguments"
            )
    return compiled


def _resolve_consumer(consumer: Consumer | str) -> Consumer:
    if consumer == "django":
        from channelworks import handler

        return handler.ViewConsumer()
    if isinstance(consumer, str):
        consumer = _import(consumer, "consumer")
    if not callable(consumer):
        raise exceptions.InvalidRoute(f"consumer {consumer!r} is not callable")
    return consumer


def _describe(thing: Any) -> str:
    name = getattr(thing, "__qualname__", None) or type(thing).__qualname__
    return f"{getattr(thing, '__module__', '?')}.{name}"


class Route:
    """Routes messages on ``channels`` that pass every filter to ``consumer``."""

    def __init__(
        self,
        channels: str | bytes | Iterable[str | bytes],
        consumer: Consumer | str,
        **filters: Any,
    ) -> None:
        names = [channels] if isinstance(channels, str | bytes) else list(channels)
        self.channels = [_text(name) for name in names]
        if not self.channels:
            raise exceptions.InvalidRoute("a route needs at least one channel name")
        self.consumer = _resolve_consumer(consumer)
        self.filters = _compile_filters(filters, f"route to {_describe(self.consumer)}")

    def resolve(self, channel: str, fields: Mapping[str, Any]) -> Resolution | None:
        if channel not in self.channels:
            return None
        kwargs: dict[str, Any] = {}
        for name, regex in self.filters.items():
            if name not in fields:
                return None
            found = regex.match(_text(fields[name]))
            if found is None:
                return None
            kwargs.update(found.groupdict())
        return Resolution(self.consumer, kwargs, self)

    def match(self, message: Message) -> tuple[Consumer, dict[str, Any]] | None:
        """Channels 1 API: ``(consumer, kwargs)`` or None."""
        found = self.resolve(message.channel.name, message.content)
        return None if found is None else (found.consumer, found.kwargs)

    def channel_names(self) -> set[str]:
        return set(self.channels)

    def __str__(self) -> str:
        filters = ", ".join(f"{name}={regex.pattern}" for name, regex in self.filters.items())
        shown = f" ({filters})" if filters else ""
        return f"{'/'.join(self.channels)}{shown} -> {_describe(self.consumer)}"


class RouteClass(Route):
    """Routes to a class-based consumer, on the channels its ``channel_names()`` lists."""

    def __init__(self, consumer: Any, **filters: Any) -> None:
        consumer = _resolve_consumer(consumer)
        names = getattr(consumer, "channel_names", None)
        if not callable(names):
            raise exceptions.InvalidRoute(
                f"route_class() needs a consumer class with channel_names(); {consumer!r} has none"
            )
        super().__init__(sorted(names()), consumer, **filters)


def _as_routable(entry: Any) -> Routable:
    if isinstance(entry, list | tuple):
        return Include(list(entry))
    if hasattr(entry, "resolve") and hasattr(entry, "channel_names"):
        return entry  # type: ignore[no-any-return]
    raise exceptions.InvalidRoute(
        f"routing entries must be route(), route_class() or include(), not {entry!r}"
    )


def resolve_routing(routing: Any) -> list[Routable]:
    """A routing list from a list, a ``{channel: consumer}`` dict, or a dotted path to either."""
    if isinstance(routing, str):
        routing = _import(routing, "routing")
    if isinstance(routing, dict):
        return [Route(channel, consumer) for channel, consumer in routing.items()]
    if isinstance(routing, list | tuple):
        return [_as_routable(entry) for entry in routing]
    raise exceptions.InvalidRoute(
        f"a routing is a list of routes (or a dotted path to one), not {type(routing).__name__}"
    )


class Include:
    """Includes another routing; its filters match a prefix that the included routes don't see."""

    def __init__(self, routing: Any, **prefixes: Any) -> None:
        self.routing = resolve_routing(routing)
        self.prefixes = _compile_filters(prefixes, "include()")

    def resolve(self, channel: str, fields: Mapping[str, Any]) -> Resolution | None:
        kwargs: dict[str, Any] = {}
        if self.prefixes:
            stripped = dict(fields)
            for name, regex in self.prefixes.items():
                if name not in fields:
                    return None
                value = _text(fields[name])
                found = regex.match(value)
                if found is None:
                    return None
                kwargs.update(found.groupdict())
                stripped[name] = value[found.end() :]
            fields = stripped
        for entry in self.routing:
            resolved = entry.resolve(channel, fields)
            if resolved is not None:
                return Resolution(resolved.consumer, {**kwargs, **resolved.kwargs}, resolved.route)
        return None

    def match(self, message: Message) -> tuple[Consumer, dict[str, Any]] | None:
        found = self.resolve(message.channel.name, message.content)
        return None if found is None else (found.consumer, found.kwargs)

    def channel_names(self) -> set[str]:
        names: set[str] = set()
        for entry in self.routing:
            names.update(entry.channel_names())
        return names


def null_consumer(message: Message, *args: Any, **kwargs: Any) -> None:
    """Consumes a message and does nothing (the default for WebSocket receive/disconnect)."""


def connect_consumer(message: Message, *args: Any, **kwargs: Any) -> None:
    """Accepts every WebSocket connection (the default ``websocket.connect`` route)."""
    if message.reply_channel is not None:
        message.reply_channel.send({"accept": True})


class Router:
    """A project's routing plus, as in Channels 1, default routes at the end: ``http.request`` to
    Django's views, ``websocket.connect`` accepting, ``websocket.receive``/``disconnect`` no-ops.
    """

    def __init__(self, routing: Any, defaults: bool = True) -> None:
        self.root = Include(routing)
        if defaults:
            self.check_default()  # which takes the routing in, with the defaults
        else:
            self._routing_changed()

    def _routing_changed(self) -> None:
        self.channels = self.root.channel_names()
        self._resolved: dict[tuple[Any, ...], Resolution | None] = {}
        self._cache_fields = _filtered_fields(self.root)

    def add_route(self, route: Routable) -> None:
        """Append a route at the end of the resolution list."""
        self.root.routing.append(route)
        self._routing_changed()

    def check_default(self, http_consumer: Consumer | None = None) -> None:
        from channelworks import handler

        self.root.routing.append(Route("http.request", http_consumer or handler.ViewConsumer()))
        self.root.routing.append(Route("websocket.connect", connect_consumer))
        self.root.routing.append(
            Route(["websocket.receive", "websocket.disconnect"], null_consumer)
        )
        self._routing_changed()

    def resolve(self, channel: str, fields: Mapping[str, Any]) -> Resolution | None:
        """The route of a message on ``channel`` with ``fields``; remembered per channel and
        filtered field values (the returned ``kwargs`` are shared: copy before changing)."""
        if channel not in self.channels:
            return None
        names = self._cache_fields
        if names is None:
            return self.root.resolve(channel, fields)
        key = (channel, *[fields.get(name, _ABSENT) for name in names])
        try:
            found = self._resolved.get(key, _ABSENT)
        except TypeError:  # a field value that cannot be a key (a list...): not remembered
            return self.root.resolve(channel, fields)
        if found is _ABSENT:
            found = self.root.resolve(channel, fields)
            if len(self._resolved) >= ROUTE_CACHE_SIZE:
                self._resolved.clear()
            self._resolved[key] = found
        return found  # type: ignore[return-value]

    def match(self, message: Message) -> tuple[Consumer, dict[str, Any]] | None:
        """Channels 1 API: ``(consumer, kwargs)`` for the message, or None."""
        found = self.resolve(message.channel.name, message.content)
        return None if found is None else (found.consumer, dict(found.kwargs))


def _filtered_fields(include: Include) -> tuple[str, ...] | None:
    """The message fields the routing's filters read, or None when an entry is not a plain
    route or include (its resolve may read anything, so nothing can be remembered)."""
    names: set[str] = set(include.prefixes)
    for entry in include.routing:
        if type(entry).resolve is Include.resolve:
            inner = _filtered_fields(entry)  # type: ignore[arg-type]
            if inner is None:
                return None
            names.update(inner)
        elif type(entry).resolve is Route.resolve:
            names.update(entry.filters)  # type: ignore[attr-defined]
        else:
            return None
    return tuple(sorted(names))


route = Route
route_class = RouteClass
include = Include
