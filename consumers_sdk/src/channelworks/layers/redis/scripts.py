"""Batched operations (Lua scripts, and one of plain commands). Each touches keys of one hash
tag only, so each runs on one cluster slot.

A batch takes shared KEYS/ARGV first, then the same layout repeated once per item, so the batcher
can merge many sends into one call and hand back one result per item.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any

Call = tuple[Any, ...]


class Batch(ABC):
    """Items that can be merged: ``name`` and the counts of shared KEYS/ARGV say how."""

    name: str
    shared_keys: int
    shared_args: int

    @abstractmethod
    def calls(self, keys: list[Any], args: list[Any]) -> list[Call]:
        """The commands for the shared part and all items' KEYS and ARGV, concatenated."""

    @abstractmethod
    def split(self, replies: list[Any], args: list[Any], count: int) -> list[Any]:
        """One result per item from the replies to ``calls(keys, args)`` for ``count`` items;
        an error reply is raised."""

    @property
    def sources(self) -> dict[str, str]:
        """Script sources by SHA1, for a server that does not know a script yet."""
        return {}


@dataclass(frozen=True)
class BatchScript(Batch):
    """A script whose items are merged into one EVALSHA; it returns one result per item."""

    name: str
    source: str
    shared_keys: int
    shared_args: int

    @cached_property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()

    @cached_property
    def sources(self) -> dict[str, str]:
        return {self.sha: self.source}

    def calls(self, keys: list[Any], args: list[Any]) -> list[Call]:
        return [("EVALSHA", self.sha, len(keys), *keys, *args)]

    def split(self, replies: list[Any], args: list[Any], count: int) -> list[Any]:
        (reply,) = replies
        if isinstance(reply, Exception):
            raise reply
        return list(reply)


@dataclass(frozen=True)
class PushToInbox(Batch):
    """Append entries to a process inbox with plain commands, no script: one ``RPUSH`` of every
    item and a ``PEXPIRE`` (the inbox of a process that died goes away after ``expiry``).

    KEYS: the inbox.  ARGV: expiry (ms), capacity, then per item: the entry.  Each item's result
    is True (in the inbox, within capacity) or False: it went past the capacity, and the
    sender takes it back (``LREM``; see ``RedisChannelLayer``). ``RPUSH`` returns the length it
    made, so the position of each entry, and whether it fits, is exact without a script."""

    name: str = "push_to_inbox"
    shared_keys: int = 1
    shared_args: int = 2

    def calls(self, keys: list[Any], args: list[Any]) -> list[Call]:
        inbox, (expiry, _, *entries) = keys[0], args
        return [("RPUSH", inbox, *entries), ("PEXPIRE", inbox, expiry)]

    def split(self, replies: list[Any], args: list[Any], count: int) -> list[Any]:
        length = replies[0]  # the PEXPIRE's reply does not change what was sent
        if isinstance(length, Exception):
            raise length
        capacity = int(args[1])
        return [position <= capacity for position in range(length - count + 1, length + 1)]


# KEYS: channels-seen set (``{<tag>}:channels``), then one stream per item. The shard's seal
# ``{<tag>}:sealed`` is read by name, same slot, undeclared: a declared key that does not exist
# would make every send during a slot migration answer TRYAGAIN.
# ARGV: expiry (ms), then per item: capacity, channel name, payload.  Returns 1 (sent) or 0 (full),
# or for every item the seal (``<epoch>:<count>``) when the shard's epoch was replaced: nothing is
# written, the sender sends again on the new epoch (``sharding``).
# A stream's expiry is refreshed only when less than ``expiry`` is left (to twice ``expiry``, and
# the channel is recorded in channels-seen then): every message still outlives its own expiry,
# and most sends cost XLEN + XADD + PTTL instead of five commands.
SEND_TO_STREAMS = BatchScript(
    name="send_to_streams",
    shared_keys=1,
    shared_args=1,
    source="""
local expiry = tonumber(ARGV[1])
local results = {}
local seal = redis.call('GET', string.sub(KEYS[1], 1, -9) .. 'sealed')
if seal then
  for i = 2, #KEYS do results[i - 1] = seal end
  return results
end
local checked = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  local base = 2 + (i - 2) * 3
  if redis.call('XLEN', key) >= tonumber(ARGV[base]) then
    results[i - 1] = 0
  else
    redis.call('XADD', key, '*', 'm', ARGV[base + 2])
    if not checked[key] then
      checked[key] = true
      if redis.call('PTTL', key) < expiry then
        redis.call('PEXPIRE', key, 2 * expiry)
        redis.call('SADD', KEYS[1], ARGV[base + 1])
        redis.call('PEXPIRE', KEYS[1], math.max(86400000, 2 * expiry))
      end
    end
    results[i - 1] = 1
  end
end
return results
""",
)

PUSH_TO_INBOX = PushToInbox()

# A Lua function for the group scripts: the members of a group, the process-specific ones
# ("<head>!<local>") grouped by head in the order first seen, and the normal channels.
_GROUP_BY_HEAD = """
local function group_by_head(members)
  local heads, locals_of, normal = {}, {}, {}
  for _, member in ipairs(members) do
    local bang = string.find(member, '!', 1, true)
    if bang then
      local head = string.sub(member, 1, bang)
      local locals = locals_of[head]
      if not locals then
        locals = {}
        locals_of[head] = locals
        heads[#heads + 1] = head
      end
      locals[#locals + 1] = string.sub(member, bang + 1)
    else
      normal[#normal + 1] = member
    end
  end
  return heads, locals_of, normal
end
"""

# KEYS: a group.  ARGV: lowest live score (exclusive, "(<time>"), then one placeholder per item.
# Returns, per item, the live members grouped on the server, so a group send carries one short
# string per process to the client instead of every member:
# {{head, "local1,local2,...", head, ...}, {normal channel, ...}}.  Local names hold no commas.
GROUP_BY_PROCESS = BatchScript(
    name="group_by_process",
    shared_keys=1,
    shared_args=1,
    source=_GROUP_BY_HEAD
    + """
local heads, locals_of, normal = group_by_head(
  redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE'))
local grouped = {}
for _, head in ipairs(heads) do
  grouped[#grouped + 1] = head
  grouped[#grouped + 1] = table.concat(locals_of[head], ',')
end
local results = {}
for i = 2, #ARGV do
  results[i - 1] = {grouped, normal}
end
return results
""",
)

# KEYS: a group, its send plan.  ARGV: group expiry (s), then per item: time joined (the score),
# channel, lowest live score (exclusive, "(<time>").  Joins or renews each member, sweeps out
# lapsed ones and drops the send plan (see GROUP_SEND_TO_INBOXES), all at once.  Returns 1 per item.
GROUP_ADD = BatchScript(
    name="group_add",
    shared_keys=2,
    shared_args=1,
    source="""
local results = {}
for i = 2, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[i + 2])
  results[#results + 1] = 1
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return results
""",
)

# A whole group send for a layer on ONE server, where the inboxes are reachable from the group's
# script (a cluster or sharded hosts use GROUP_BY_PROCESS and then PUSH_TO_INBOX instead).
# KEYS: a group, its send plan.  ARGV: lowest live score (exclusive, "(<time>"), what comes
# before and after the process id in an inbox key, inbox capacity, expiry (ms), group expiry
# (ms), then per item: the inbox entry's tail (inbox.entry_tail: sent time and message).
# Writes one entry per process (per channel-name head, which is one per process unless it
# used several new_channel prefixes), as pack_entry would: a msgpack array of the local names
# (comma-separated) and the tail.  Returns, per item, {inboxes that were full, {normal
# channel, ...}}: the client sends to normal channels.
#
# The send plan is a list: the lowest live score it was made for, the oldest live member's
# score, how many members the group had (ZCARD), the number of entries k, then k times (inbox
# key, entry start), then the normal channels.  It is reused while it still describes the
# group's live members exactly: made for a bound no later than this one, no member lapsed since
# (the oldest is still live), and as many members as then (group_add and group_discard delete
# it too); otherwise it is made again from the members.  It expires after group_expiry, as the
# group does, and is not kept for a group without members.
GROUP_SEND_TO_INBOXES = BatchScript(
    name="group_send_to_inboxes",
    shared_keys=2,
    shared_args=6,
    source=_GROUP_BY_HEAD
    + """
local lowest = tonumber(string.sub(ARGV[1], 2))
local count = redis.call('ZCARD', KEYS[1])
local plan = redis.call('LRANGE', KEYS[2], 0, -1)
if not (#plan >= 4 and tonumber(plan[1]) <= lowest and lowest < tonumber(plan[2])
        and tonumber(plan[3]) == count) then
  local heads, locals_of, normal = group_by_head(
    redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE'))
  local oldest = redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE', 'LIMIT', 0, 1,
    'WITHSCORES')[2] or '1e300'
  local process_id = '(' .. string.rep('[0-9a-f]', 12) .. ')!$'
  local function str_header(n)
    if n < 32 then return string.char(160 + n) end
    if n < 256 then return string.char(217, n) end
    if n < 65536 then return string.char(218, math.floor(n / 256), n % 256) end
    return string.char(219, math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
      math.floor(n / 256) % 256, n % 256)
  end
  plan = {string.sub(ARGV[1], 2), oldest, tostring(count), tostring(#heads)}
  for _, head in ipairs(heads) do
    local locals = table.concat(locals_of[head], ',')
    plan[#plan + 1] = ARGV[2] .. (string.match(head, process_id) or head) .. ARGV[3]
    plan[#plan + 1] = '\\147' .. str_header(#locals) .. locals
  end
  for _, member in ipairs(normal) do
    plan[#plan + 1] = member
  end
  redis.call('DEL', KEYS[2])
  if count > 0 then  -- no plan is kept for a group that does not exist
    for i = 1, #plan, 1000 do
      redis.call('RPUSH', KEYS[2], unpack(plan, i, math.min(i + 999, #plan)))
    end
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
  end
end
local processes = tonumber(plan[4])
local normal = {}
for i = 5 + 2 * processes, #plan do
  normal[#normal + 1] = plan[i]
end
local capacity = tonumber(ARGV[4])
local results = {}
for item = 7, #ARGV do
  local full = 0
  for i = 5, 3 + 2 * processes, 2 do
    local inbox = plan[i]
    if redis.call('LLEN', inbox) >= capacity then
      full = full + 1
    else
      redis.call('RPUSH', inbox, plan[i + 1] .. ARGV[item])
      redis.call('PEXPIRE', inbox, ARGV[5])
    end
  end
  results[#results + 1] = {full, normal}
end
return results
""",
)
