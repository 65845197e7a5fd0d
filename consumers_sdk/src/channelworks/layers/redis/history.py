"""Group history on Redis: a bounded, expiring log of each stream group, read by offset.

Keys, beside the group's own (same hash tag ``{<prefix>:g:<group>}``, so one slot on a cluster
and every script here touches one slot):

- ``{<prefix>:g:<group>}:hmeta``: a hash, ``epoch`` and ``offset`` (the last one given);
- ``{<prefix>:g:<group>}:hist``: a list of the last ``size`` messages (msgpack, without their
  position: entry ``i`` of an ``n``-long list has offset ``offset - n + 1 + i``).

Both expire ``ttl`` seconds after the last send; a send that finds no ``hmeta`` starts a new
epoch at offset 1, so a client holding an older epoch is told its history is gone.
"""

from __future__ import annotations

import secrets
from typing import Any

from channelworks.layers import codec, history
from channelworks.layers.redis.batcher import Batcher
from channelworks.layers.redis.keys import KeyLayout
from channelworks.layers.redis.scripts import BatchScript

# KEYS: hmeta, hist.  ARGV: size, ttl (ms), then per item: epoch candidate, payload.
# Returns {epoch, offset} per item.  A new epoch is the first item's candidate plus the server's
# clock, so two histories of one group never share an epoch.
HISTORY_APPEND = BatchScript(
    name="history_append",
    shared_keys=2,
    shared_args=2,
    source="""
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local now = redis.call('TIME')
  epoch = ARGV[3] .. '-' .. now[1] .. now[2]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
local results = {}
for i = 3, #ARGV, 2 do
  local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
  redis.call('RPUSH', KEYS[2], ARGV[i + 1])
  results[#results + 1] = {epoch, offset}
end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return results
""",
)

# KEYS: the group, hmeta, hist.  ARGV: member channel, epoch, after (offset), limit, then one
# placeholder per item.  Returns per item {status, epoch, latest, {payload, ...}} (see HistoryRead).
HISTORY_READ = BatchScript(
    name="history_read",
    shared_keys=3,
    shared_args=4,
    source="""
local function answer()
  if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    return {'not_member', '', 0, {}}
  end
  local meta = redis.call('HMGET', KEYS[2], 'epoch', 'offset')
  local epoch, latest = meta[1], tonumber(meta[2] or 0)
  if not epoch then
    return {'gone', '', 0, {}}
  end
  if epoch ~= ARGV[2] then
    return {'gone', epoch, latest, {}}
  end
  local after = tonumber(ARGV[3])
  if after >= latest then
    return {'ok', epoch, latest, {}}
  end
  local length = redis.call('LLEN', KEYS[3])
  local first = latest - length + 1
  if after + 1 < first then
    return {'gone', epoch, latest, {}}
  end
  local start = after + 1 - first
  local stop = math.min(start + tonumber(ARGV[4]) - 1, length - 1)
  return {'ok', epoch, latest, redis.call('LRANGE', KEYS[3], start, stop)}
end
local result = answer()
local results = {}
for i = 5, #ARGV do
  results[#results + 1] = result
end
return results
""",
)


def meta_key(layout: KeyLayout, group: str) -> str:
    return f"{layout.group(group)}:hmeta"


def log_key(layout: KeyLayout, group: str) -> str:
    return f"{layout.group(group)}:hist"


async def append(
    layout: KeyLayout,
    batcher: Batcher,
    group: str,
    message: dict[str, Any],
    size: int,
    ttl: float,
    max_size: int,
) -> dict[str, Any]:
    """Keep ``message`` in ``group``'s history; return it stamped with its position."""
    payload = codec.encode(message, max_size)
    meta = meta_key(layout, group)
    epoch, offset = await batcher.script(
        KeyLayout.tag_of(meta),
        HISTORY_APPEND,
        [meta, log_key(layout, group)],
        [size, int(ttl * 1000)],
        args=[secrets.token_hex(4), payload],
    )
    return history.stamped(message, group, _text(epoch), int(offset))


async def read(
    layout: KeyLayout, batcher: Batcher, group: str, channel: str, epoch: str, after: int
) -> history.HistoryRead:
    """What ``channel`` (a member of ``group``) missed after ``after`` in ``epoch``."""
    key = layout.group(group)
    status, current, latest, payloads = await batcher.script(
        KeyLayout.tag_of(key),
        HISTORY_READ,
        [key, meta_key(layout, group), log_key(layout, group)],
        [channel, epoch, after, history.READ_LIMIT],
        args=[0],
    )
    current, latest = _text(current), int(latest)
    offsets = range(after + 1, after + 1 + len(payloads))
    messages = [
        (offset, history.stamped(codec.decode(payload), group, current, offset))
        for offset, payload in zip(offsets, payloads, strict=True)
    ]
    return history.HistoryRead(_text(status), current, latest, messages)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
