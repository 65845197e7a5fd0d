"""Group history: which groups keep one, and what a read of it answers (backend-neutral).

A group with history (opted in by ``CHANNELWORKS["GROUP_HISTORY"]``, see docs/delivery.md) is a
*stream*: every message sent to it gets the stream's **epoch** (a random id, new whenever the
history starts afresh: first send, or after it expired) and an **offset** (1, 2, 3... within the
epoch), carried in the message as ``POSITION_FIELD: [group, epoch, offset]``. The layer keeps the
last ``size`` messages for ``ttl`` seconds after the last send, so a reconnecting client that
says "I had offset 17 of epoch E" can be given exactly 18, 19... or be told the history is gone.

Pure: settings in, policy out; no I/O.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from channelworks.exceptions import ConfigurationError

POSITION_FIELD = "_position"
DEFAULT_TTL = 300.0
MAX_SIZE = 100_000
# At most this many messages come back from one history read (a page; the reader asks again).
READ_LIMIT = 1000


@dataclass(frozen=True)
class HistoryRule:
    """How much of one group's stream is kept: the last ``size`` messages, for ``ttl`` seconds
    after the last send."""

    size: int
    ttl: float


@dataclass(frozen=True)
class HistoryPolicy:
    """Which groups keep a history, and how much (the first matching pattern wins)."""

    patterns: tuple[tuple[re.Pattern[str], HistoryRule], ...] = ()

    def rule_for(self, group: str) -> HistoryRule | None:
        """What ``group`` keeps, or None: no history."""
        for pattern, rule in self.patterns:
            if pattern.match(group):
                return rule
        return None

    @property
    def enabled(self) -> bool:
        return bool(self.patterns)


NO_HISTORY = HistoryPolicy()
_SETTING = 'CHANNELWORKS["GROUP_HISTORY"]'


def policy_from_settings(value: Any, ttl: Any = None) -> HistoryPolicy:
    """``{"liveblog": 300, "room-*": {"size": 100, "ttl": 60}}`` (group name or glob -> messages
    kept, or size and TTL) and the default TTL in seconds (``GROUP_HISTORY_TTL``, default 300):
    a ``HistoryPolicy``, or a ConfigurationError naming the setting and what is allowed."""
    if value is None:
        return NO_HISTORY
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{_SETTING} must be a dict of group name (or glob) -> number of messages kept, "
            f"e.g. {{'liveblog': 300}}; got {type(value).__name__}"
        )
    default_ttl = _ttl('CHANNELWORKS["GROUP_HISTORY_TTL"]', DEFAULT_TTL if ttl is None else ttl)
    patterns: list[tuple[re.Pattern[str], HistoryRule]] = []
    for name, rule in value.items():
        where = f"{_SETTING}[{name!r}]"
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{_SETTING} keys are group names or globs, got {name!r}")
        if isinstance(rule, Mapping):
            unknown = sorted(set(rule) - {"size", "ttl"})
            if unknown or "size" not in rule:
                raise ConfigurationError(
                    f"{where} takes 'size' (required) and 'ttl', got {sorted(rule)}"
                )
            size, rule_ttl = rule["size"], _ttl(f"{where}['ttl']", rule.get("ttl", default_ttl))
        else:
            size, rule_ttl = rule, default_ttl
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
            raise ConfigurationError(
                f"{where} must be a whole number of messages from 1 to {MAX_SIZE} (or a dict "
                f"with 'size' and 'ttl'), got {size!r}"
            )
        patterns.append((re.compile(fnmatch.translate(name)), HistoryRule(size, rule_ttl)))
    return HistoryPolicy(tuple(patterns))


def _ttl(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 604800:
        raise ConfigurationError(
            f"{where} must be a number of seconds from 1 to 604800 (a week), got {value!r}"
        )
    return float(value)


def position(message: Mapping[str, Any]) -> tuple[str, str, int] | None:
    """``(group, epoch, offset)`` of a message sent to a group with history, else None."""
    value = message.get(POSITION_FIELD)
    if (
        isinstance(value, list | tuple)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], str)
        and isinstance(value[2], int)
    ):
        return value[0], value[1], value[2]
    return None


def stamped(message: Mapping[str, Any], group: str, epoch: str, offset: int) -> dict[str, Any]:
    """``message`` with its position in ``group``'s stream."""
    return {**message, POSITION_FIELD: [group, epoch, offset]}


def without_position(message: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key != POSITION_FIELD}


@dataclass(frozen=True)
class HistoryRead:
    """What a history read found for one member of one group.

    - ``status`` ``"ok"``: ``messages`` are (offset, message) after the asked offset, in order,
      up to ``READ_LIMIT`` (``latest`` is the stream's last offset; ask again from the last one
      returned while it is below ``latest``);
    - ``"gone"``: the asked messages are no longer all kept (another epoch, expired, trimmed);
      ``epoch``/``latest`` say where the stream is now (``""``/0 when it has no history);
    - ``"not_member"``: the asking channel is not in the group (nothing is read for it).
    """

    status: str
    epoch: str = ""
    latest: int = 0
    messages: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


GONE = HistoryRead("gone")
