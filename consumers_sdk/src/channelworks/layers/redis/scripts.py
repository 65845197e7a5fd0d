"""Lua scripts. Each touches keys of one hash tag only, so each runs on one cluster slot.

Batched scripts take shared KEYS/ARGV first, then the same layout repeated once per item, so the
batcher can merge many sends into one call and hand back one result per item.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class BatchScript:
    """A script whose items can be merged into one EVAL."""

    name: str
    source: str
    shared_keys: int
    shared_args: int

    @cached_property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


# KEYS: channels-seen set, then one stream per item.
# ARGV: expiry (ms), then per item: capacity, channel name, payload.  Returns 1 (sent) or 0 (full).
SEND_TO_STREAMS = BatchScript(
    name="send_to_streams",
    shared_keys=1,
    shared_args=1,
    source="""
local expiry = ARGV[1]
local results = {}
local seen = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  local base = 2 + (i - 2) * 3
  if redis.call('XLEN', key) >= tonumber(ARGV[base]) then
    results[i - 1] = 0
  else
    redis.call('XADD', key, '*', 'm', ARGV[base + 2])
    if not seen[key] then
      redis.call('PEXPIRE', key, expiry)
      redis.call('SADD', KEYS[1], ARGV[base + 1])
      seen[key] = true
    end
    results[i - 1] = 1
  end
end
redis.call('PEXPIRE', KEYS[1], 86400000)
return results
""",
)

# KEYS: the process inbox.  ARGV: expiry (ms), then per item: capacity, payload.
PUSH_TO_INBOX = BatchScript(
    name="push_to_inbox",
    shared_keys=1,
    shared_args=1,
    source="""
local length = redis.call('LLEN', KEYS[1])
local results = {}
for i = 2, #ARGV, 2 do
  if length >= tonumber(ARGV[i]) then
    results[#results + 1] = 0
  else
    redis.call('RPUSH', KEYS[1], ARGV[i + 1])
    length = length + 1
    results[#results + 1] = 1
  end
end
if length > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return results
""",
)

# KEYS: a group.  ARGV: lowest live score (exclusive, "(<time>"), then one placeholder per item.
# Returns, per item, the live members grouped on the server, so a group send carries one short
# string per process to the client instead of every member:
# {{head, "local1,local2,...", head, ...}, {normal channel, ...}}.  Local names hold no commas.
GROUP_BY_PROCESS = BatchScript(
    name="group_by_process",
    shared_keys=1,
    shared_args=1,
    source="""
local members = redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE')
local locals_of = {}
local heads = {}
local normal = {}
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

# KEYS: a lease.  ARGV: owner, ttl (ms).  Keeps the lease if still ours: 1, else 0.
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: a lease.  ARGV: owner.  Drops the lease if still ours.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
