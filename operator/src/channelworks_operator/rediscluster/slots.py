"""Hash slot arithmetic: ranges, counts and the even split of the 16384 slots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SLOTS = 16384

Range = tuple[int, int]
"""An inclusive range of slots, ``(first, last)``."""
Ranges = tuple[Range, ...]


def to_ranges(slots: Iterable[int]) -> Ranges:
    """Sorted, merged inclusive ranges of the given slots."""
    ranges: list[Range] = []
    for slot in sorted(set(slots)):
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1] = (ranges[-1][0], slot)
        else:
            ranges.append((slot, slot))
    return tuple(ranges)


def merge(ranges: Iterable[Range]) -> Ranges:
    """Sorted ranges with adjacent and overlapping ones joined."""
    merged: list[Range] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return tuple(merged)


def expand(ranges: Iterable[Range]) -> list[int]:
    """Every slot of ``ranges``, in order."""
    return [slot for first, last in ranges for slot in range(first, last + 1)]


def count(ranges: Iterable[Range]) -> int:
    return sum(last - first + 1 for first, last in ranges)


def quotas(masters: int) -> list[int]:
    """How many slots each of ``masters`` masters serves when spread evenly (largest first)."""
    base, extra = divmod(SLOTS, masters)
    return [base + (1 if index < extra else 0) for index in range(masters)]


def even_split(masters: int) -> list[Ranges]:
    """Contiguous ranges covering all slots, one per master, sizes as ``quotas``."""
    split: list[Ranges] = []
    first = 0
    for size in quotas(masters):
        split.append(((first, first + size - 1),))
        first += size
    return split


def format_ranges(ranges: Sequence[Range]) -> str:
    """``0-5460,5462`` for logs and events."""
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges) or "none"
