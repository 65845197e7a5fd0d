"""The interfaces' load reports (what the operator's interface autoscaler reads).

One hash per app, ``{<prefix>}:load``: field = the reporting process (its pod name), value =
``<connections> <expiry in Unix ms> <cpu percent>`` (the CPU part is left out when the process
does not measure it; a report without it, from an older interface, still counts). Each interface
writes its field every few seconds; a reader keeps the fields not yet expired and deletes the
rest (a pod that stopped reporting). The expiry is the writer's clock and the check the
reader's: node clocks agree far more closely than the seconds a report lives. The whole hash
expires too, so a deleted app leaves nothing.
"""

from __future__ import annotations

import math
import time

from channelworks.layers.redis.batcher import Batcher
from channelworks.layers.redis.keys import KeyLayout
from channelworks.layers.stats import LoadReport


def encode(report: LoadReport, expiry_ms: int) -> str:
    value = f"{report.connections} {expiry_ms}"
    if report.cpu_percent is not None:
        value += f" {report.cpu_percent:.1f}"
    return value


async def report(
    layout: KeyLayout, batcher: Batcher, member: str, load: LoadReport, ttl_seconds: float
) -> None:
    expiry_ms = int((time.time() + ttl_seconds) * 1000)
    await batcher.command(layout.prefix, "HSET", layout.load, member, encode(load, expiry_ms))
    await batcher.command(layout.prefix, "PEXPIRE", layout.load, int(ttl_seconds * 1000))


def fresh(entries: dict[str, str], now_ms: int) -> tuple[dict[str, LoadReport], list[str]]:
    """The unexpired reports, and the members whose report expired (or is garbled)."""
    reports: dict[str, LoadReport] = {}
    stale: list[str] = []
    for member, value in entries.items():
        parsed = _decode(value, now_ms)
        if parsed is None:
            stale.append(member)
        else:
            reports[member] = parsed
    return reports, stale


def _decode(value: str, now_ms: int) -> LoadReport | None:
    parts = value.split(" ")
    if len(parts) not in (2, 3) or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    if int(parts[1]) < now_ms:
        return None
    cpu: float | None = None
    if len(parts) == 3:
        try:
            cpu = float(parts[2])
        except ValueError:
            return None
        if not math.isfinite(cpu) or cpu < 0:
            return None
    return LoadReport(int(parts[0]), cpu)


async def read(layout: KeyLayout, batcher: Batcher) -> dict[str, LoadReport]:
    raw = await batcher.command(layout.prefix, "HGETALL", layout.load)
    if isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        pairs = list(zip(raw[::2], raw[1::2], strict=True))
    entries = {_text(key): _text(value) for key, value in pairs}
    reports, stale = fresh(entries, int(time.time() * 1000))
    if stale:
        await batcher.command(layout.prefix, "HDEL", layout.load, *stale)
    return reports


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
