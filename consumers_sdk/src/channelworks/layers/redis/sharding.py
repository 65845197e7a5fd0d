"""How many work shards an application has now, and changing that number online.

The shard count is layer state, one hash per application (``{<prefix>}:shards``): the current
``epoch`` and ``count``, and while a change drains, the previous epoch's (``draining_epoch``,
``draining_count``). No hash means epoch 0 with the count the processes were configured with
(``shards``), which is how every application starts.

Each epoch has its own shard tags (:class:`KeyLayout` ``epoch``), so its streams, leases and
hand-out counts are its own. A change (:func:`change`) first **seals** every shard of the current
epoch (``{<tag>}:sealed`` = ``<new epoch>:<new count>``, one key in each shard's own slot), then
writes the new state. The send script refuses to write to a sealed shard and returns the seal
instead, so a sender that still uses the old epoch learns the new one from its first refused send
and sends again there: from the moment a shard is sealed nothing new enters it. Workers read the
state at each balancing round; they keep reading the old epoch's shards until they are empty and
read a new shard only once every old shard that can hold messages of the same connections is
empty (:func:`depends_on`): a connection's messages in the new epoch are never handled before
its messages in the old one. A new change waits until the previous one has drained
(:class:`~channelworks.exceptions.ShardChangePending`); :func:`retire_if_drained` forgets a
drained epoch.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channelworks.exceptions import ConfigurationError, ShardChangePending
from channelworks.layers.redis.batcher import Batcher
from channelworks.layers.redis.keys import KeyLayout

MAX_SHARDS = 1024


@dataclass(frozen=True)
class Epoch:
    """One generation of the shard layout: its number and its shard count."""

    number: int
    count: int

    def layout(self, prefix: str) -> KeyLayout:
        return KeyLayout(prefix, self.count, self.number)


@dataclass(frozen=True)
class ShardState:
    """The application's current epoch, and the previous one while it drains."""

    current: Epoch
    draining: Epoch | None = None


def parse_state(raw: Mapping[Any, Any], configured: int) -> ShardState:
    """The state from the hash's fields (bytes or text); an empty hash: epoch 0, ``configured``."""
    fields = {_text(key): int(value) for key, value in raw.items()}
    if "epoch" not in fields:
        return ShardState(Epoch(0, configured))
    draining = None
    if "draining_epoch" in fields:
        draining = Epoch(fields["draining_epoch"], fields["draining_count"])
    return ShardState(Epoch(fields["epoch"], fields["count"]), draining)


def parse_seal(value: Any) -> Epoch:
    """The epoch a sealed shard's seal points to (``<epoch>:<count>``)."""
    number, _, count = _text(value).partition(":")
    return Epoch(int(number), int(count))


def depends_on(new_count: int, old_count: int, shard: int) -> list[int]:
    """The old shards that can hold messages of the connections of new shard ``shard``.

    A connection's key ``k`` lands on ``k % old_count`` and then on ``k % new_count``; both are
    ``k`` modulo their gcd, so new shard ``j`` shares connections exactly with the old shards
    ``i`` where ``i ≡ j (mod gcd)``: one old shard when the count is multiplied, all of them when
    the counts are coprime."""
    step = math.gcd(new_count, old_count)
    return list(range(shard % step, old_count, step))


async def read_state(layout: KeyLayout, batcher: Batcher) -> ShardState:
    """One ``HGETALL`` of the application's shard state."""
    return parse_state(
        await batcher.command(layout.prefix, "HGETALL", layout.shard_state), layout.shards
    )


async def is_empty(
    layout: KeyLayout, batcher: Batcher, shard: int, channels: Sequence[str] | None = None
) -> bool:
    """Whether the streams of ``channels`` (None: every channel seen) on ``shard`` are empty.

    Entries stay in their stream until acked, so an empty stream of a sealed shard is done."""
    tag = layout.shard_tags[shard]
    if channels is None:
        seen = await batcher.command(tag, "SMEMBERS", layout.channels_seen(shard))
        channels = [_text(name) for name in seen]
    lengths = await asyncio.gather(
        *(batcher.command(tag, "XLEN", layout.stream(shard, channel)) for channel in channels)
    )
    return not any(lengths)


async def retire_if_drained(layout: KeyLayout, batcher: Batcher) -> ShardState:
    """Forget the draining epoch once every stream of every one of its shards is empty."""
    state = await read_state(layout, batcher)
    if state.draining is None:
        return state
    old = state.draining.layout(layout.prefix)
    empty = await asyncio.gather(*(is_empty(old, batcher, shard) for shard in range(old.shards)))
    if not all(empty):
        return state
    await batcher.command(
        layout.prefix, "HDEL", layout.shard_state, "draining_epoch", "draining_count"
    )
    return ShardState(state.current)


async def change(layout: KeyLayout, batcher: Batcher, count: int) -> ShardState:
    """Make ``count`` the application's shard count, online; returns the state it wrote.

    Raises :class:`ShardChangePending` while a previous change is still draining. Only one
    process may change the count at a time (the operator)."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_SHARDS:
        raise ConfigurationError(
            f"the shard count must be an integer from 1 to {MAX_SHARDS}, got {count!r}"
        )
    state = await retire_if_drained(layout, batcher)
    key = layout.shard_state
    if count == state.current.count:
        if state.current.number == 0:  # make the configured count the app's, explicitly
            await batcher.command(layout.prefix, "HSET", key, "epoch", 0, "count", count)
        return state
    if state.draining is not None:
        raise ShardChangePending(
            f"the work shards are still changing from {state.draining.count} to "
            f"{state.current.count} (messages of the old shards are being handled); "
            f"change to {count} once they are"
        )
    old = state.current
    new = Epoch(old.number + 1, count)
    old_layout = old.layout(layout.prefix)
    seal = f"{new.number}:{new.count}"
    await asyncio.gather(
        *(
            batcher.command(old_layout.shard_tags[shard], "SET", old_layout.sealed(shard), seal)
            for shard in range(old.count)
        )
    )
    await batcher.command(
        layout.prefix,
        "HSET",
        key,
        "epoch", new.number, "count", new.count,
        "draining_epoch", old.number, "draining_count", old.count,
    )  # fmt: skip
    return ShardState(new, old)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
