"""Reliable, ordered consumption of normal channels by a group of worker processes.

Each channel is split into shard streams. The members of a worker group share the shards through
leases (one owner per shard and channel at a time, renewed every third of ``lease_seconds``; each
member aims for an equal share among the members with its channel set; see
:mod:`channelworks.layers.redis.leases` for why leases are per channel). The owner of a shard
reads all its streams with one blocking XREAD, so every event of a connection (they all hash to
one shard) reaches the same process, where :class:`KeyedDispatcher` hands them out one at a time
and in order.

A message stays in its stream until it is acked (XDEL). When an owner dies its leases lapse, the
next owner reads the shard from the start and so gets every unacked message again: redelivery
within ``lease_seconds`` plus one renewal period.

The shard count can change while the members run (:mod:`channelworks.layers.redis.sharding`):
each balancing round reads the application's shard state. While a change drains, members also
take the previous epoch's shards (beyond their share, as evenly) and read them until their
streams are empty; a shard of the new epoch is read only once every old shard it shares
connections with is empty, so a connection's events stay in order across the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
import zlib
from collections.abc import Sequence
from typing import Any

from channelworks.layers import codec
from channelworks.layers.base import WorkReceiver
from channelworks.layers.ordering import Delivery, KeyedDispatcher, ordering_key
from channelworks.layers.redis import leases, sharding
from channelworks.layers.redis.backoff import ReadBackoff
from channelworks.layers.redis.batcher import Batcher, is_retryable
from channelworks.layers.redis.connection import BLOCK_SECONDS, Clients
from channelworks.layers.redis.keys import KeyLayout
from channelworks.layers.redis.wire import Exchange

logger = logging.getLogger(__name__)
MAX_UNACKED_PER_SHARD = 512
DRAIN_SECONDS = 30.0


def _id_millis(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


class _Shard:
    def __init__(self, layout: KeyLayout, index: int) -> None:
        self.layout = layout
        self.index = index
        self.tag = layout.shard_tags[index]
        self.attempts = layout.attempts(index)  # the hash of its entries' hand-out counts
        self.unacked = 0
        self.room = asyncio.Event()
        self.room.set()
        self.reader: asyncio.Task[None] | None = None
        self.releasing = False
        # Per stream, the last entry that was there when we took the shard: only those can have
        # been handed out by a previous owner. None: unknown, treat every entry as such.
        self.backlog_until: dict[bytes, tuple[int, int]] | None = None


class RedisWorkReceiver(WorkReceiver):
    """See the module docstring."""

    def __init__(
        self,
        *,
        layout: KeyLayout,
        clients: Clients,
        batcher: Batcher,
        channels: Sequence[str],
        group: str,
        lease_seconds: float,
        expiry: float,
    ) -> None:
        self._layout = layout  # the current shard epoch's, once the state is read
        self._old: KeyLayout | None = None  # the previous epoch's, while it drains
        self._drained: set[int] = set()  # shards of the previous epoch empty for our channels
        self._clients = clients
        self._batcher = batcher
        self._one_route = batcher.one_route
        self._channels = sorted(set(channels))
        self._group = group
        self._members_key = layout.workers(leases.member_set(group, self._channels))
        self._lease_seconds = lease_seconds
        self._expiry = expiry
        self._member = secrets.token_hex(8)
        self._dispatcher = KeyedDispatcher()
        self._shards: dict[tuple[int, int], _Shard] = {}  # by (epoch, index)
        self._handed_out = 0
        self._all_acked = asyncio.Event()
        self._membership: asyncio.Task[None] | None = None
        self._stopping = False
        self._healthy = True

    @property
    def owned_shards(self) -> list[int]:
        """The shards of the current epoch this member holds."""
        epoch = self._layout.epoch
        return sorted(index for number, index in self._shards if number == epoch)

    @property
    def shard_count(self) -> int:
        """The application's shard count as this member last read it."""
        return self._layout.shards

    async def get(self, timeout: float | None = None) -> Delivery | None:
        if self._membership is None and not self._stopping:
            self._membership = asyncio.get_running_loop().create_task(self._keep_membership())
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopping:
            self._dispatcher.release_overdue()
            delivery = self._dispatcher.next_ready()
            if delivery is not None:
                self._handed_out += 1
                self._all_acked.clear()
                return delivery
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            await self._dispatcher.wait_changed(0.5 if remaining is None else min(remaining, 0.5))
        return None

    @property
    def healthy(self) -> bool:
        """Whether the last round of lease renewals reached Redis."""
        return self._healthy

    async def stop(self, timeout: float | None = None) -> None:
        """Take nothing new, wait (bounded) for handed-out work to be acked, give shards back."""
        if self._stopping:
            return
        self._stopping = True
        for shard in self._shards.values():
            if shard.reader is not None:
                shard.reader.cancel()
        if self._handed_out:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._all_acked.wait(), DRAIN_SECONDS if timeout is None else timeout
                )
        if self._membership is not None:
            self._membership.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._membership
        with contextlib.suppress(Exception):
            await self._leave()

    async def _leave(self) -> None:
        calls = [
            self._lease_command(shard.layout, shard.index, leases.RELEASE, self._member)
            for shard in list(self._shards.values())
        ]
        calls.append(
            self._batcher.command(self._layout.prefix, "ZREM", self._members_key, self._member)
        )
        self._shards.clear()
        await asyncio.gather(*calls)

    async def _keep_membership(self) -> None:
        interval = self._lease_seconds / 3
        while True:
            short_of_share = False
            try:
                short_of_share = await self._balance()
                self._healthy = True
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._healthy = False
                if not is_retryable(error):
                    logger.exception("worker group %s: balancing shards failed", self._group)
                else:
                    logger.info("worker group %s: Redis unavailable (%s)", self._group, error)
            # Below our share, other members are about to give shards back: look again soon.
            await asyncio.sleep(min(interval, 0.25) if short_of_share else interval)

    async def _balance(self) -> bool:
        """Heartbeat, renew our leases, then take or give shards to reach an equal share.

        Returns whether we still hold fewer shards than our share."""
        now = time.time()
        ttl_ms = int(self._lease_seconds * 1000)
        members = self._members_key
        tag = self._layout.prefix
        _, _, live, _, state = await asyncio.gather(
            self._batcher.command(tag, "ZADD", members, now, self._member),
            self._batcher.command(
                tag, "ZREMRANGEBYSCORE", members, "-inf", now - self._lease_seconds
            ),
            self._batcher.command(tag, "ZRANGE", members, 0, -1),
            self._batcher.command(tag, "PEXPIRE", members, ttl_ms * 10),
            self._batcher.command(tag, "HGETALL", self._layout.shard_state),
        )
        owned = list(self._shards.values())
        renewed = await asyncio.gather(
            *(
                self._lease_command(shard.layout, shard.index, leases.RENEW, self._member, ttl_ms)
                for shard in owned
            )
        )
        for shard, still_ours in zip(owned, renewed, strict=True):
            if not still_ours:
                logger.warning(
                    "worker group %s: lost the lease on shard %d", self._group, shard.index
                )
                self._drop(shard)
        names = [_text(member) for member in live]
        await self._follow(sharding.parse_state(state, self._layout.shards))
        if self._old is not None:
            await self._drain_old(self._old, names, ttl_ms)
        epoch = self._layout.epoch
        current = sorted(index for number, index in self._shards if number == epoch)
        target = share(self._layout.shards, names, self._member)
        if len(current) < target and not self._stopping:
            candidates = self._start_order(self._layout.shards)
            await self._acquire(self._layout, candidates, target - len(current), ttl_ms)
        elif len(current) > target:
            for index in current[target:]:
                await self._give_back(self._shards[(epoch, index)])
        # Below our share, other members are about to give shards back; while a change
        # drains, old shards empty out: look again soon in both cases.
        return len(self.owned_shards) < target or self._old is not None

    async def _follow(self, state: sharding.ShardState) -> None:
        """Move to the application's current shard epoch; give back shards of retired ones."""
        prefix = self._layout.prefix
        if state.current.number > self._layout.epoch:
            logger.info(
                "worker group %s: work shards now %d (epoch %d)",
                self._group, state.current.count, state.current.number,
            )  # fmt: skip
            self._layout = state.current.layout(prefix)
        old = None if state.draining is None else state.draining.layout(prefix)
        if old is None or self._old is None or old.epoch != self._old.epoch:
            self._drained = set()
        self._old = old
        live = {self._layout.epoch} | (set() if old is None else {old.epoch})
        for shard in list(self._shards.values()):
            if shard.layout.epoch not in live:  # retired: every stream of it is empty
                await self._give_back(shard)

    async def _drain_old(self, old: KeyLayout, members: list[str], ttl_ms: int) -> None:
        """Learn which old shards are empty for our channels, give those back, and take (beyond
        our share of the new ones) a fair share of the others so they drain. Only the old shards
        we hold or our new shards wait for are looked at (an old shard, once empty, stays so)."""
        relevant = {index for number, index in self._shards if number == old.epoch}
        for index in self.owned_shards:
            relevant.update(sharding.depends_on(self._layout.shards, old.shards, index))
        pending = sorted(relevant - self._drained)
        empty = await asyncio.gather(
            *(sharding.is_empty(old, self._batcher, index, self._channels) for index in pending)
        )
        for index, done in zip(pending, empty, strict=True):
            if done:
                self._drained.add(index)
                shard = self._shards.get((old.epoch, index))
                if shard is not None:
                    await self._give_back(shard)
        held = sum(1 for number, _ in self._shards if number == old.epoch)
        wanted = share(old.shards, members, self._member) - held
        if wanted > 0 and not self._stopping:
            candidates = [
                index
                for index in self._start_order(old.shards)
                if index not in self._drained and (old.epoch, index) not in self._shards
            ]
            await self._acquire(old, candidates, wanted, ttl_ms)

    def _start_order(self, count: int) -> list[int]:
        """Every shard index, from a member-specific offset (members try different ones)."""
        start = zlib.crc32(self._member.encode()) % count
        return [(start + step) % count for step in range(count)]

    async def _lease_command(self, layout: KeyLayout, index: int, script: str, *args: Any) -> Any:
        keys = leases.lease_keys(layout, index, self._group, self._channels)
        return await self._batcher.command(
            layout.shard_tags[index], "EVAL", script, len(keys), *keys, *args
        )

    async def _acquire(
        self, layout: KeyLayout, candidates: list[int], wanted: int, ttl_ms: int
    ) -> None:
        """Try the free ``candidates`` of ``layout``'s epoch, ``wanted`` at a time."""
        candidates = [index for index in candidates if (layout.epoch, index) not in self._shards]
        while wanted > 0 and candidates:
            trying, candidates = candidates[:wanted], candidates[wanted:]
            taken = await asyncio.gather(
                *(
                    self._lease_command(layout, index, leases.ACQUIRE, self._member, ttl_ms)
                    for index in trying
                )
            )
            for index, ok in zip(trying, taken, strict=True):
                if ok:
                    wanted -= 1
                    shard = self._shards[(layout.epoch, index)] = _Shard(layout, index)
                    shard.reader = asyncio.get_running_loop().create_task(self._read(shard))

    async def _give_back(self, shard: _Shard) -> None:
        """Stop reading a shard; release it once what we handed out from it is acked."""
        key = (shard.layout.epoch, shard.index)
        if self._shards.get(key) is not shard:
            return
        if shard.reader is not None:
            shard.reader.cancel()
            shard.reader = None
        shard.releasing = True
        if shard.unacked:
            return  # released by the last ack (the lease is renewed meanwhile)
        del self._shards[key]
        await self._lease_command(shard.layout, shard.index, leases.RELEASE, self._member)

    def _drop(self, shard: _Shard) -> None:
        held = self._shards.pop((shard.layout.epoch, shard.index), None)
        if held is not None and shard.reader is not None:
            shard.reader.cancel()

    async def _read(self, shard: _Shard) -> None:
        layout = shard.layout
        streams: dict[Any, Any] = {
            layout.stream(shard.index, channel).encode(): b"0-0" for channel in self._channels
        }
        line = self._clients.line(layout.shard_tags[shard.index])
        try:
            await self._wait_for_old_shards(shard)
            shard.backlog_until = await self._last_entries(shard, list(streams))
            await self._read_with(shard, streams, line)
        finally:
            await line.close()  # a cancelled read leaves its reply on the connection

    async def _wait_for_old_shards(self, shard: _Shard) -> None:
        """Hold a new-epoch shard until every old shard sharing its connections is empty."""
        while self._reading(shard):
            old = self._old
            if old is None or old.epoch >= shard.layout.epoch:
                return
            needed = sharding.depends_on(shard.layout.shards, old.shards, shard.index)
            if all(index in self._drained for index in needed):
                return
            await asyncio.sleep(0.05)

    async def _last_entries(
        self, shard: _Shard, keys: list[bytes]
    ) -> dict[bytes, tuple[int, int]] | None:
        """The newest entry of each stream as we take the shard (None if Redis cannot say)."""
        tag = shard.layout.shard_tags[shard.index]
        try:
            newest = await asyncio.gather(
                *(
                    self._batcher.command(tag, "XREVRANGE", key, "+", "-", "COUNT", 1)
                    for key in keys
                )
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.info(
                "shard %d: newest entries unknown (%s); counting every hand-out", shard.index, error
            )
            return None
        return {key: _id_tuple(rows[0][0]) for key, rows in zip(keys, newest, strict=True) if rows}

    async def _read_with(self, shard: _Shard, streams: dict[Any, Any], line: Exchange) -> None:
        backoff = ReadBackoff(f"shard {shard.index}")
        block = int(BLOCK_SECONDS * 1000)
        # The flags, not only cancellation, end the loop: a client library may turn a
        # cancelled read into a connection error, which this loop would otherwise retry.
        while self._reading(shard):
            room = MAX_UNACKED_PER_SHARD - shard.unacked
            if room <= 0:
                shard.room.clear()
                await shard.room.wait()
                continue
            try:
                response = await line.one(
                    "XREAD", "COUNT", min(room, 256), "BLOCK", block,
                    "STREAMS", *streams, *streams.values(),
                )  # fmt: skip
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await backoff.failed(error)
                continue
            if not response and await self._behind_the_cursor(shard, streams):
                continue
            if self._reading(shard):  # else what was read stays in Redis for the next owner
                rows = response.items() if isinstance(response, dict) else response or []
                await self._take(shard, streams, list(rows))

    async def _behind_the_cursor(self, shard: _Shard, streams: dict[Any, Any]) -> bool:
        """A sealed shard (of an epoch a change replaced) takes no new entries; once all we
        handed out from it is acked, whatever its streams still hold is an entry whose delete a
        master failover lost (Redis replicates asynchronously): handled, back behind our
        position, and keeping the change from draining for ever. Read the shard again from its
        start then, as a new owner would (at least once, as after any failover). Returns
        whether it did."""
        if shard.layout.epoch >= self._layout.epoch or shard.unacked:
            return False
        if await sharding.is_empty(shard.layout, self._batcher, shard.index, self._channels):
            return False
        logger.warning(
            "shard %d of epoch %d: entries behind the read position (a lost delete after a "
            "failover?): reading it again from the start",
            shard.index, shard.layout.epoch,
        )  # fmt: skip
        for key in streams:
            streams[key] = b"0-0"
        shard.backlog_until = await self._last_entries(shard, list(streams))
        return True

    def _reading(self, shard: _Shard) -> bool:
        key = (shard.layout.epoch, shard.index)
        return not self._stopping and not shard.releasing and self._shards.get(key) is shard

    async def _take(self, shard: _Shard, streams: dict[Any, Any], response: list[Any]) -> None:
        per_stream: list[list[tuple[bytes, bytes, dict[bytes, bytes]]]] = []
        for key, items in response:
            if items:
                streams[key] = items[-1][0]
                per_stream.append([(key, entry_id, fields) for entry_id, fields in items])
        # Round-robin over the channels so a busy one cannot starve the others; the order of
        # one connection's events across channels is restored by the ``order`` field.
        entries = [
            entry
            for row in itertools.zip_longest(*per_stream)
            for entry in row
            if entry is not None
        ]
        oldest_alive = (time.time() - self._expiry) * 1000
        stale: list[tuple[bytes, bytes]] = []
        for key, entry_id, fields in entries:
            payload = fields.get(b"m")
            if payload is None or _id_millis(entry_id) < oldest_alive:
                stale.append((key, entry_id))
                continue
            try:
                message = codec.decode(payload)
            except Exception:
                logger.exception("dropping an undecodable message from %r", key)
                stale.append((key, entry_id))
                continue
            channel = shard.layout.channel_of_stream(key.decode())
            shard.unacked += 1
            acker, queue_ack = self._acker(shard, key, entry_id)
            starter = self._starter(shard, key, entry_id)
            self._dispatcher.offer(
                Delivery(
                    channel,
                    message,
                    ordering_key(message),
                    acker,
                    _on_start=starter,
                    _on_queue_ack=queue_ack,
                )
            )
        if stale:
            await self._delete(stale)

    def _starter(self, shard: _Shard, key: bytes, entry_id: bytes) -> Any:
        """Count a hand-out in Redis before the worker runs the entry, so the worker that gets
        it after a crash knows it ran before (at-most-once HTTP, dead letters)."""

        async def start(exact: bool) -> int:
            field = _attempt_field(key, entry_id)
            backlog = shard.backlog_until
            if exact or backlog is None or _id_tuple(entry_id) <= backlog.get(key, (0, 0)):
                return int(
                    await self._batcher.command(shard.tag, "HINCRBY", shard.attempts, field, 1)
                )
            # Arrived after we took the shard: nobody handed it out before, so its count is 1.
            # Record the hand-out (for the next owner, should we die) without waiting for the
            # answer, but until it is written: a consumer that kills its process at once must
            # still be counted (dead letters). Queued in the next pipeline with no future of
            # its own (the batcher logs a failure), one HSET for every such hand-out of that
            # pipeline (placed with the first: nothing before it concerns these entries; their
            # deletes come after).
            await self._batcher.enqueue_merged_unanswered(
                shard.tag, "HSET", shard.attempts, field, 1, early=True
            )
            return 1

        return start

    def _acker(self, shard: _Shard, key: bytes, entry_id: bytes) -> tuple[Any, Any]:
        """The ack of a taken entry, and how to queue its deletes ahead (``queue_ack``)."""
        tag = shard.tag
        queued: list[asyncio.Future[Any]] = []

        def queue_ack(delivery: Delivery) -> None:
            # On one connection the pipeline keeps its order: these deletes go out behind the
            # replies queued next (``late``), so a crash between them still redelivers. On
            # several servers nothing orders them: the ack then waits for the replies.
            if not queued and self._one_route:
                queued.extend(self._deletes(tag, key, entry_id, late=True))

        async def ack(delivery: Delivery) -> None:
            self._dispatcher.done(delivery)  # the connection's next event may go now
            try:
                if queued and all(future.done() for future in queued):
                    for future in queued:  # went out with the reply: no loop turn to wait
                        future.result()
                else:
                    await asyncio.gather(*(queued or self._deletes(tag, key, entry_id)))
            finally:
                # Only once the entry is gone may the shard be handed to another worker.
                shard.unacked -= 1
                shard.room.set()
                self._handed_out -= 1
                if self._handed_out <= 0:
                    self._all_acked.set()
                if shard.releasing and not shard.unacked:
                    await self._give_back(shard)

        return ack, queue_ack

    async def _delete(self, entries: list[tuple[bytes, bytes]]) -> None:
        """XDEL taken or stale entries and forget their hand-outs."""
        await asyncio.gather(
            *(
                future
                for key, entry_id in entries
                for future in self._deletes(KeyLayout.tag_of(key.decode()), key, entry_id)
            )
        )

    def _deletes(
        self, tag: str, key: bytes, entry_id: bytes, late: bool = False
    ) -> list[asyncio.Future[Any]]:
        """The XDEL of an entry and the HDEL of its hand-out, queued for the next pipeline as
        plain futures (no task per command, as a gather of coroutines would make). The batcher
        merges those of one pipeline: one XDEL per stream and one HDEL per shard, however many
        entries they delete; ``late``: behind everything else of that pipeline."""
        return [
            self._batcher.enqueue_merged(tag, "XDEL", key, entry_id, late=late),
            self._batcher.enqueue_merged(
                tag, "HDEL", KeyLayout.attempts_in(tag), _attempt_field(key, entry_id), late=late
            ),
        ]


def share(shards: int, members: Sequence[str], member: str) -> int:
    """How many shards ``member`` aims to hold: ``shards`` split as evenly as possible over the
    live ``members`` (sorted ids; the first ``shards % n`` take one more). Each member of up to
    ``shards`` members gets at least one, so no worker idles while there are shards for it."""
    ranked = sorted(set(members) | {member})
    base, extra = divmod(shards, len(ranked))
    return base + (1 if ranked.index(member) < extra else 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_tuple(entry_id: bytes) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition(b"-")
    return int(millis), int(sequence or 0)


def _attempt_field(key: bytes, entry_id: bytes) -> bytes:
    return key + b"/" + entry_id
