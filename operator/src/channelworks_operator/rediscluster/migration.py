"""Moving hash slots and their keys from one master to another without losing a key.

The protocol of ``redis-cli --cluster reshard``, batched: for a batch of slots the target is set
IMPORTING and the source MIGRATING (clients asking for a key not on the source are sent to the
target with ASK, new keys land there), the keys move with ``MIGRATE ... KEYS`` (many per call,
one call per slot, many calls per round trip), and ``SETSLOT NODE`` hands the slots to the target,
on the target first, then the source, then the other masters. Every step is idempotent, so a run
interrupted at any point is finished by planning and moving again (see ``planning._open_slots``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from redis.exceptions import RedisError

from channelworks_operator.rediscluster import actions as act
from channelworks_operator.rediscluster import slots as sl
from channelworks_operator.rediscluster.connections import Connections

logger = logging.getLogger(__name__)

SLOTS_PER_BATCH = 256
KEYS_PER_MIGRATE = 500
MIGRATES_PER_CALL = 32
MIGRATE_TIMEOUT_MS = 10_000
_NOT_A_MASTER = "only with masters"


def _batches(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def move_slots(
    connections: Connections, move: act.MoveSlots, *, deadline: float | None = None
) -> int:
    """Move ``move.slots`` batch by batch; stop between batches once ``deadline`` (event-loop
    time) has passed. Returns how many slots moved; the rest stay with the source, closed."""
    loop = asyncio.get_running_loop()
    moved = 0
    for batch in _batches(sl.expand(move.slots), SLOTS_PER_BATCH):
        if deadline is not None and loop.time() > deadline:
            logger.info(
                "time budget spent after moving %d of %d slots to %s; the rest on the next run",
                moved,
                sl.count(move.slots),
                move.target,
            )
            break
        await _move_batch(connections, move, batch)
        moved += len(batch)
    return moved


async def _move_batch(connections: Connections, move: act.MoveSlots, batch: Sequence[int]) -> None:
    await connections.pipeline(
        move.target, [("CLUSTER", "SETSLOT", slot, "IMPORTING", move.source_id) for slot in batch]
    )
    await connections.pipeline(
        move.source, [("CLUSTER", "SETSLOT", slot, "MIGRATING", move.target_id) for slot in batch]
    )
    await _migrate_keys(connections, move, batch)
    handover = [("CLUSTER", "SETSLOT", slot, "NODE", move.target_id) for slot in batch]
    await connections.pipeline(move.target, handover)
    await asyncio.gather(
        _hand_over(connections, move.source, handover, required=True),
        *(_hand_over(connections, address, handover) for address in move.notify),
    )


async def _hand_over(
    connections: Connections, address: str, handover: list[tuple[Any, ...]], required: bool = False
) -> None:
    """Tell the source (``required``) or another master that the slots moved; the others would
    learn it from the target's broadcast too, telling them is only quicker."""
    try:
        await connections.pipeline(address, handover)
    except (RedisError, OSError) as error:
        # A master that lost its last slot turns into a replica of the node that took it (as soon
        # as the target's news arrives); then it has nothing left to hand over.
        if _NOT_A_MASTER in str(error):
            return
        if required:
            raise
        logger.warning("could not tell %s about moved slots: %s", address, error)


async def _migrate_keys(
    connections: Connections, move: act.MoveSlots, batch: Sequence[int]
) -> None:
    auth: tuple[str, ...] = ("AUTH", connections.password) if connections.password else ()
    pending = list(batch)
    while pending:
        replies = await connections.pipeline(
            move.source,
            [("CLUSTER", "GETKEYSINSLOT", slot, KEYS_PER_MIGRATE) for slot in pending],
        )
        loaded: list[tuple[int, list[Any]]] = [
            (slot, list(keys)) for slot, keys in zip(pending, replies, strict=True) if keys
        ]
        if not loaded:
            return
        migrates = [
            (
                "MIGRATE",
                move.target_host,
                move.target_port,
                "",
                0,
                MIGRATE_TIMEOUT_MS,
                "REPLACE",
                *auth,
                "KEYS",
                *keys,
            )
            for _, keys in loaded
        ]
        for start in range(0, len(migrates), MIGRATES_PER_CALL):  # big values take a while
            await connections.pipeline(
                move.source,
                migrates[start : start + MIGRATES_PER_CALL],
                timeout=MIGRATE_TIMEOUT_MS / 1000 * 2,
            )
        # A MIGRATING source creates no new keys in the slot (it sends clients to the target),
        # so a slot that had fewer keys than asked for is empty now.
        pending = [slot for slot, keys in loaded if len(keys) >= KEYS_PER_MIGRATE]
