"""Reading the fields of Channels-1 messages as the interface servers send them.

Header lists are ``[[name, value], ...]`` of bytes (strings are accepted too, and so is the old
``{name: value}`` form); ``query_string`` is bytes or str; ``client``/``server`` are
``[host, port]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WEBSOCKET_CHANNELS = ("websocket.connect", "websocket.receive", "websocket.disconnect")


def text(value: Any) -> str:
    """A header name/value or query string as text (bytes are read as latin-1, as HTTP does)."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return "" if value is None else str(value)


def header_pairs(headers: Any) -> list[tuple[str, str]]:
    """``[(lower-case name, value), ...]`` from a message's ``headers`` field."""
    if isinstance(headers, Mapping):
        items: list[Any] = list(headers.items())
    elif isinstance(headers, list | tuple):
        items = list(headers)
    else:
        return []
    pairs = []
    for item in items:
        if isinstance(item, list | tuple) and len(item) == 2:
            pairs.append((text(item[0]).lower(), text(item[1])))
    return pairs


def header(content: Mapping[str, Any], name: str) -> str | None:
    """All values of header ``name`` joined as HTTP allows (cookies with ``; ``), or None."""
    values = [value for key, value in header_pairs(content.get("headers")) if key == name]
    if not values:
        return None
    return ("; " if name == "cookie" else ",").join(values)


def address(value: Any) -> tuple[str, int] | None:
    """``(host, port)`` from a ``client``/``server`` field, or None."""
    if isinstance(value, list | tuple) and len(value) >= 2:
        try:
            return text(value[0]), int(value[1])
        except (TypeError, ValueError):
            return None
    return None
