"""Who may read a shard's streams: one lease per (shard, group, channel), taken all or none.

A worker reading shard ``n`` for the channels ``C1..Ck`` holds the leases of ``C1..Ck`` on that
shard (``{<prefix>#<n>}:lease:<group>:<C>``). Leases per channel, not per shard, are what let
workers with different channel sets (worker pools) share an application: a pool on ``chan.a`` and
one on ``chan.b`` never hold each other's leases, so each reads every shard of its own channels
and strands nothing. Two members whose channel sets overlap cannot hold the same shard at once
(the shared channel's lease is taken), so a stream is never read by two processes: no message is
handed out twice and a connection's order holds; the non-shared channels of that shard wait until
one of them leaves (a rollout that changes the routed channels; the operator refuses pools that
overlap).

Every key of one call carries the shard's hash tag, so each script runs on one cluster slot.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from channelworks.layers.redis.keys import KeyLayout

# KEYS: the leases.  ARGV: owner, ttl ms.  Takes every lease or none; 1 if taken.
ACQUIRE = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1
"""

# KEYS: the leases.  ARGV: owner, ttl ms.  Extends them if every one is still ours (1); else
# gives back the ones that are and returns 0 (the shard is lost).
RENEW = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) ~= ARGV[1] then
    for _, mine in ipairs(KEYS) do
      if redis.call('GET', mine) == ARGV[1] then redis.call('DEL', mine) end
    end
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, ARGV[2])
end
return 1
"""

# KEYS: the leases.  ARGV: owner.  Drops those still ours.
RELEASE = """
local dropped = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    dropped = dropped + redis.call('DEL', key)
  end
end
return dropped
"""


def lease_keys(layout: KeyLayout, shard: int, group: str, channels: Sequence[str]) -> list[str]:
    """The leases a member reading ``channels`` of ``shard`` holds (sorted, one slot)."""
    return [layout.lease(shard, f"{group}:{channel}") for channel in sorted(channels)]


def member_set(group: str, channels: Sequence[str]) -> str:
    """The name under which members with this channel set count each other for their share:
    members with another channel set do not compete for the same leases, so they do not count."""
    digest = zlib.crc32(",".join(sorted(set(channels))).encode())
    return f"{group}.{digest:08x}"
