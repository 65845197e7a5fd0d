"""Layer settings: the ``CONFIG`` keys of channels_redis plus our own, read once and frozen."""

from __future__ import annotations

import fnmatch
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from channelworks.exceptions import ConfigurationError
from channelworks.layers.codec import DEFAULT_MAX_MESSAGE_SIZE

DEFAULT_PREFIX = "asgi"
DEFAULT_EXPIRY = 60.0
DEFAULT_GROUP_EXPIRY = 86400
DEFAULT_CAPACITY = 100
DEFAULT_SHARDS = 16
DEFAULT_LEASE_SECONDS = 5.0
DEFAULT_INBOX_CAPACITY = 100_000


@dataclass(frozen=True)
class LayerConfig:
    """Settings every backend understands; see docs/channel-layer.md for each key."""

    prefix: str = DEFAULT_PREFIX
    expiry: float = DEFAULT_EXPIRY
    group_expiry: int = DEFAULT_GROUP_EXPIRY
    capacity: int = DEFAULT_CAPACITY
    channel_capacity: tuple[tuple[re.Pattern[str], int], ...] = field(default=())
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    shards: int = DEFAULT_SHARDS
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    inbox_capacity: int = DEFAULT_INBOX_CAPACITY

    def capacity_for(self, channel: str) -> int:
        """The capacity of ``channel``: the first matching ``channel_capacity`` pattern wins."""
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        return self.capacity


def _positive(name: str, value: Any, kind: type = int) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
    return kind(value)


def compile_capacities(
    channel_capacity: dict[Any, int] | None,
) -> tuple[tuple[re.Pattern[str], int], ...]:
    """Turn ``{"http.request": 200, re.compile("^websocket"): 20}`` into matchers.

    String keys are globs (as in Channels); compiled regexes are used as they are.
    """
    compiled: list[tuple[re.Pattern[str], int]] = []
    for pattern, capacity in (channel_capacity or {}).items():
        matcher = pattern if hasattr(pattern, "match") else re.compile(fnmatch.translate(pattern))
        compiled.append((matcher, _positive(f"channel_capacity[{pattern!r}]", capacity)))
    return tuple(compiled)


# channels_redis keys this layer does not take, and why: a project switching its BACKEND line
# learns what to do instead of meeting a bare TypeError.
UNSUPPORTED_KEYS = {
    "symmetric_encryption_keys": "encrypt at the transport instead: rediss:// URLs (TLS)",
    "serializer_format": "messages are always msgpack",
    "on_disconnect": "connection handling is internal; failed commands are retried",
    "on_reconnect": "connection handling is internal; failed commands are retried",
}


def layer_config(**options: Any) -> LayerConfig:
    """Validate the ``CONFIG`` keyword arguments a backend was given and freeze them."""
    for key in sorted(options):
        if key in UNSUPPORTED_KEYS:
            raise ConfigurationError(
                f"channel layer option {key!r} is not supported: {UNSUPPORTED_KEYS[key]}"
            )
    unknown = sorted(set(options) - set(LAYER_KEYS))
    if unknown:
        raise ConfigurationError(
            f"unknown channel layer option(s) {', '.join(map(repr, unknown))}; allowed: "
            f"{', '.join(LAYER_KEYS)} (and the backend's connection options, e.g. hosts)"
        )
    return _validated(**options)


def _validated(
    *,
    prefix: str = DEFAULT_PREFIX,
    expiry: float = DEFAULT_EXPIRY,
    group_expiry: int = DEFAULT_GROUP_EXPIRY,
    capacity: int = DEFAULT_CAPACITY,
    channel_capacity: dict[Any, int] | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    shards: int = DEFAULT_SHARDS,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    inbox_capacity: int = DEFAULT_INBOX_CAPACITY,
) -> LayerConfig:
    if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "{}\n "):
        raise ConfigurationError(
            f"prefix must be a non-empty string without braces or spaces, got {prefix!r}"
        )
    if not isinstance(shards, int) or not 1 <= shards <= 1024:
        raise ConfigurationError(f"shards must be an integer from 1 to 1024, got {shards!r}")
    return LayerConfig(
        prefix=prefix,
        expiry=_positive("expiry", expiry, float),
        group_expiry=_positive("group_expiry", group_expiry),
        capacity=_positive("capacity", capacity),
        channel_capacity=compile_capacities(channel_capacity),
        max_message_size=_positive("max_message_size", max_message_size),
        shards=shards,
        lease_seconds=_positive("lease_seconds", lease_seconds, float),
        inbox_capacity=_positive("inbox_capacity", inbox_capacity),
    )


LAYER_KEYS = tuple(inspect.signature(_validated).parameters)
