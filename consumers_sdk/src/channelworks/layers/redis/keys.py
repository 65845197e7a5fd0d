"""Where every piece of layer state lives in Redis.

All keys of one application start with its prefix and carry a hash tag, so multi-key commands stay
in one cluster slot while the application as a whole spreads over every master:

- normal channel ``C``: one stream per shard, ``{<prefix>#<n>}:q:<C>``; the shard tags are chosen
  so their slots are evenly spaced over 0..16383, which gives each master of an evenly split
  cluster a fair share; after the shard count changed, epoch ``e`` has its own tags
  ``<prefix>#<e>.<n>`` (:mod:`channelworks.layers.redis.sharding`);
- the application's shard count and epoch: ``{<prefix>}:shards``; a shard of an epoch that was
  replaced: ``{<prefix>#<n>}:sealed`` (the epoch and count that replaced it);
- the channel names seen on a shard: ``{<prefix>#<n>}:channels`` (for ``queue_stats``);
- worker leases on a shard: ``{<prefix>#<n>}:lease:<group>``;
- hand-outs of the shard's unacked entries (a hash, field ``<stream>/<entry id>``):
  ``{<prefix>#<n>}:attempts``;
- one inbox list per process for all its process-specific channels: ``{<prefix>:<head>}:inbox``;
- a group's members: ``{<prefix>:g:<group>}``;
- what the last send to a group found out (its send plan; one server only):
  ``{<prefix>:g:<group>}:plan``;
- the live members of a worker group: ``{<prefix>}:workers:<group>``.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass
from functools import cached_property

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


@functools.lru_cache(maxsize=64)
def _spread_shard_tags(prefix: str, shards: int, epoch: int) -> tuple[str, ...]:
    """One tag per shard, shard ``i``'s slot near the middle of the i-th of ``shards`` equal
    slot ranges, so an evenly split cluster holds ``shards / masters`` shards per master. Epoch
    0 keeps the tags of a layer that never changed its count; each later epoch has its own.

    The search costs about ``4 x shards**2`` slot computations (2 s of CPU at 1024 shards), so
    it runs once per process for each app, count and epoch: a shard state read makes a new
    ``KeyLayout`` every time (``queue_stats`` each poll, a worker's balancing round while a
    change drains)."""
    tags: list[str] = []
    candidate = 0
    base = prefix if epoch == 0 else f"{prefix}#{epoch}."
    width = REDIS_CLUSTER_HASH_SLOTS / shards
    for index in range(shards):
        centre = (index + 0.5) * width
        while True:
            tag = f"{prefix}#{candidate}" if epoch == 0 else f"{base}{candidate}"
            candidate += 1
            if abs(key_slot(tag.encode()) - centre) <= max(1.0, width / 8):
                tags.append(tag)
                break
    return tuple(tags)


@dataclass(frozen=True)
class KeyLayout:
    """Key names for one application prefix, shard count and shard epoch (pure, no I/O)."""

    prefix: str
    shards: int
    epoch: int = 0

    @cached_property
    def shard_tags(self) -> tuple[str, ...]:
        return _spread_shard_tags(self.prefix, self.shards, self.epoch)

    def shard_for(self, channel: str, ordering_key: str | None) -> int:
        """The shard of a message: fixed per connection, so one connection's events stay in
        order on one shard while connections spread; fixed per channel for messages of no
        connection, so such a channel stays first-in first-out."""
        return zlib.crc32((ordering_key or channel).encode()) % self.shards

    def stream(self, shard: int, channel: str) -> str:
        return f"{{{self.shard_tags[shard]}}}:q:{channel}"

    def channel_of_stream(self, key: str) -> str:
        return key.split("}:q:", 1)[1]

    def channels_seen(self, shard: int) -> str:
        return f"{{{self.shard_tags[shard]}}}:channels"

    def attempts(self, shard: int) -> str:
        """How many times each entry of the shard's streams was handed to a worker (a hash)."""
        return self.attempts_in(self.shard_tags[shard])

    @staticmethod
    def attempts_in(tag: str) -> str:
        return f"{{{tag}}}:attempts"

    def sealed(self, shard: int) -> str:
        """Set once this epoch was replaced: the new ``<epoch>:<count>``; sends refuse it."""
        return f"{{{self.shard_tags[shard]}}}:sealed"

    @property
    def shard_state(self) -> str:
        """The application's shard count and epoch (a hash, see ``sharding``)."""
        return f"{{{self.prefix}}}:shards"

    def lease(self, shard: int, group: str) -> str:
        return f"{{{self.shard_tags[shard]}}}:lease:{group}"

    def inbox(self, process: str) -> str:
        before, after = self.inbox_affixes
        return f"{before}{process}{after}"

    @property
    def inbox_affixes(self) -> tuple[str, str]:
        """What comes before and after the process id in an inbox key (a script builds them)."""
        return f"{{{self.prefix}:", "}:inbox"

    def group(self, group: str) -> str:
        return f"{{{self.prefix}:g:{group}}}"

    def send_plan(self, group: str) -> str:
        return f"{self.group(group)}:plan"

    def workers(self, group: str) -> str:
        return f"{{{self.prefix}}}:workers:{group}"

    @property
    def load(self) -> str:
        """The hash of the interfaces' open-connection reports (member -> count and expiry)."""
        return f"{{{self.prefix}}}:load"

    @property
    def scan_pattern(self) -> str:
        """A ``SCAN ... MATCH`` pattern that finds every key of this prefix, and those of
        prefixes that start with it: keep only what ``owns`` says."""
        return "{" + _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + "*"

    def owns(self, key: str) -> bool:
        """Whether ``key`` is this prefix's: its hash tag is the prefix, ``<prefix>#<n>`` or
        ``<prefix>#<epoch>.<n>`` (a shard) or ``<prefix>:...`` (an inbox, a group). So app
        ``chat`` never claims the keys of ``chat-staging``; a prefix that is another one
        followed by ``:`` is not told apart."""
        if not key.startswith("{") or "}" not in key:
            return False
        tag = key[1 : key.index("}")]
        if tag == self.prefix or tag.startswith(f"{self.prefix}:"):
            return True
        shard = tag.removeprefix(f"{self.prefix}#")
        parts = shard.split(".")  # <n>, or <epoch>.<n> after a change of the shard count
        return shard != tag and len(parts) <= 2 and all(part.isdigit() for part in parts)

    @staticmethod
    def tag_of(key: str) -> str:
        return key[key.index("{") + 1 : key.index("}")]
