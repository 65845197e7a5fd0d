"""The interfaces' open-connection reports (what the operator's interface autoscaler reads).

One hash per app, ``{<prefix>}:load``: field = the reporting process (its pod name), value =
``<connections> <expiry in Unix ms>``. Each interface writes its field every few seconds; a
reader counts the fields not yet expired and deletes the rest (a pod that stopped reporting).
The expiry is the writer's clock and the check the reader's: node clocks agree far more closely
than the seconds a report lives. The whole hash expires too, so a deleted app leaves nothing.
"""

from __future__ import annotations

import time

from channelworks.layers.redis.batcher import Batcher
from channelworks.layers.redis.keys import KeyLayout


async def report(
    layout: KeyLayout, batcher: Batcher, member: str, connections: int, ttl_seconds: float
) -> None:
    expiry_ms = int((time.time() + ttl_seconds) * 1000)
    await batcher.command(layout.prefix, "HSET", layout.load, member, f"{connections} {expiry_ms}")
    await batcher.command(layout.prefix, "PEXPIRE", layout.load, int(ttl_seconds * 1000))


def fresh(entries: dict[str, str], now_ms: int) -> tuple[dict[str, int], list[str]]:
    """The unexpired reports as counts, and the members whose report expired (or is garbled)."""
    counts: dict[str, int] = {}
    stale: list[str] = []
    for member, value in entries.items():
        count, _, expiry = value.partition(" ")
        if count.isdigit() and expiry.isdigit() and int(expiry) >= now_ms:
            counts[member] = int(count)
        else:
            stale.append(member)
    return counts, stale


async def read(layout: KeyLayout, batcher: Batcher) -> dict[str, int]:
    raw = await batcher.command(layout.prefix, "HGETALL", layout.load)
    if isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        pairs = list(zip(raw[::2], raw[1::2], strict=True))
    entries = {_text(key): _text(value) for key, value in pairs}
    counts, stale = fresh(entries, int(time.time() * 1000))
    if stale:
        await batcher.command(layout.prefix, "HDEL", layout.load, *stale)
    return counts


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
