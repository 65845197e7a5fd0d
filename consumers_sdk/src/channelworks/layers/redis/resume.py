"""Resumable sessions on Redis: parked session records and each socket's group memberships.

Keys (cluster-safe, as the rest of the layer):

- ``{<prefix>:r:<token>}``: a parked session (msgpack), for the resume TTL;
- ``{<prefix>:<process>}:groups:<local>``: the groups a process-specific channel joined (a set,
  beside its process's inbox, same tag), kept by ``group_add``/``group_discard`` and expiring
  with ``group_expiry``, so a resumed socket's memberships can be moved to its new channel.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channelworks.layers import codec, naming
from channelworks.layers.redis.batcher import Batcher
from channelworks.layers.redis.keys import KeyLayout


def session_key(layout: KeyLayout, token: str) -> str:
    return f"{{{layout.prefix}:r:{token}}}"


def memberships_key(layout: KeyLayout, channel: str) -> str | None:
    """Where the groups of ``channel`` are listed; None for a normal channel (not indexed)."""
    if not naming.is_process_specific(channel):
        return None
    head, local = naming.split_process_specific(channel)
    inbox = layout.inbox(naming.process_of(head))
    return f"{inbox[: inbox.index('}') + 1]}:groups:{local}"


async def remember(
    layout: KeyLayout, batcher: Batcher, group: str, channel: str, expiry: int
) -> None:
    key = memberships_key(layout, channel)
    if key is not None:
        tag = KeyLayout.tag_of(key)
        await asyncio.gather(
            batcher.command(tag, "SADD", key, group), batcher.command(tag, "EXPIRE", key, expiry)
        )


async def forget(layout: KeyLayout, batcher: Batcher, group: str, channel: str) -> None:
    key = memberships_key(layout, channel)
    if key is not None:
        await batcher.command(KeyLayout.tag_of(key), "SREM", key, group)


async def groups_of(layout: KeyLayout, batcher: Batcher, channel: str) -> list[str]:
    key = memberships_key(layout, channel)
    if key is None:
        return []
    members = await batcher.command(KeyLayout.tag_of(key), "SMEMBERS", key)
    return sorted(member.decode() if isinstance(member, bytes) else member for member in members)


async def drop_memberships(layout: KeyLayout, batcher: Batcher, channel: str) -> None:
    key = memberships_key(layout, channel)
    if key is not None:
        await batcher.command(KeyLayout.tag_of(key), "DEL", key)


async def park(
    layout: KeyLayout, batcher: Batcher, token: str, record: dict[str, Any], ttl: float
) -> None:
    key = session_key(layout, token)
    payload = codec.encode(record)
    await batcher.command(KeyLayout.tag_of(key), "SET", key, payload, "PX", int(ttl * 1000))


async def claim(layout: KeyLayout, batcher: Batcher, token: str) -> dict[str, Any] | None:
    key = session_key(layout, token)
    payload = await batcher.command(KeyLayout.tag_of(key), "GETDEL", key)
    return None if payload is None else codec.decode(payload)
