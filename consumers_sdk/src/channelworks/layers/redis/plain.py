"""``receive`` / ``receive_many`` on normal channels: shared, at-most-once consumption.

Every reader of a channel joins one Redis consumer group (``plain``) on each of the channel's
shard streams and reads with ``XREADGROUP ... NOACK``: Redis hands each entry to exactly one
reader, so several processes share a busy channel, and a channel with a single reader gets its
messages first-in first-out. Taken entries are deleted right away (at-most-once, as in
channels_redis): the ``XDEL`` rides in front of whatever a woken receiver sends to the same server
at once (``Batcher.ride``; a reply, typically), else in the same write as the shard's next
blocking read, so it costs no write of its own either way. The delete is not waited for, as the
group never hands an entry out twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis import exceptions as redis_errors

from channelworks.layers import codec
from channelworks.layers.ordering import Delivery, KeyedDispatcher
from channelworks.layers.redis.backoff import ReadBackoff
from channelworks.layers.redis.batcher import Batcher, settle
from channelworks.layers.redis.connection import BLOCK_SECONDS, Clients
from channelworks.layers.redis.keys import KeyLayout
from channelworks.layers.redis.wire import Exchange

logger = logging.getLogger(__name__)
GROUP = "plain"
READ_AHEAD = 256

# KEYS: the shard's channels-seen set, then streams of that shard.  ARGV: group, ttl (ms), then
# the channel of each stream.  Creates the group where it is missing (from the start of the
# stream, so a backlog is read), gives streams made here an expiry and records their channels
# (senders record a channel only when they refresh its stream's expiry). allow-oom: a full Redis
# (maxmemory, noeviction) refuses writes, and without the flag a reader that comes after the
# sends could never make its group, so it could never read (and free) what fills the server.
ENSURE_GROUPS = """#!lua flags=allow-oom
for i = 2, #KEYS do
  redis.pcall('XGROUP', 'CREATE', KEYS[i], ARGV[1], '0', 'MKSTREAM')
  if redis.call('PTTL', KEYS[i]) == -1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    redis.call('SADD', KEYS[1], ARGV[i + 1])
    redis.call('PEXPIRE', KEYS[1], math.max(86400000, 2 * ARGV[2]))
  end
end
return #KEYS - 1
"""


def _stream_or_group_gone(error: redis_errors.ResponseError) -> bool:
    """NOGROUP: the stream came back without our group; UNBLOCKED: it expired under our read."""
    return str(error).startswith(("NOGROUP", "UNBLOCKED"))


class PlainReceiver:
    """Reads a set of normal channels on every shard and queues what arrives, round-robin."""

    def __init__(
        self,
        *,
        layout: KeyLayout,
        clients: Clients,
        batcher: Batcher,
        channels: Sequence[str],
        expiry: float,
        on_malformed: Callable[[str], None] = lambda what: None,
    ) -> None:
        self._layout = layout
        self._clients = clients
        self._batcher = batcher
        self._channels = list(channels)
        self._expiry = expiry
        self._on_malformed = on_malformed
        self._consumer = secrets.token_hex(8)
        self._dispatcher = KeyedDispatcher()
        self._room = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self._closed = False

    async def get(self, timeout: float | None) -> Delivery | None:
        if not self._readers and not self._closed:
            loop = asyncio.get_running_loop()
            self._room.set()
            self._readers = [
                loop.create_task(self._read(shard)) for shard in range(self._layout.shards)
            ]
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            delivery = self._dispatcher.next_ready()
            if delivery is not None:
                self._room.set()
                return delivery
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            await self._dispatcher.wait_changed(5.0 if remaining is None else remaining)
        return None

    async def close(self) -> None:
        self._closed = True
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._readers = []

    async def _ensure_groups(self, shard: int, keys: list[str]) -> None:
        await self._batcher.command(
            self._layout.shard_tags[shard],
            "EVAL",
            ENSURE_GROUPS,
            len(keys) + 1,
            self._layout.channels_seen(shard),
            *keys,
            GROUP,
            int(max(self._expiry, 60) * 1000),
            *self._channels,
        )

    async def _read(self, shard: int) -> None:
        keys = [self._layout.stream(shard, channel) for channel in self._channels]
        line = self._clients.line(self._layout.shard_tags[shard])
        try:
            await self._read_with(shard, keys, line)
        finally:
            self._send_deletes(shard)
            await line.close()

    async def _read_with(self, shard: int, keys: list[str], line: Exchange) -> None:
        block = int(BLOCK_SECONDS * 1000)
        read: tuple[Any, ...] = (
            "XREADGROUP", "GROUP", GROUP, self._consumer, "COUNT", READ_AHEAD, "BLOCK", block,
            "NOACK", "STREAMS", *keys, *(">" for _ in keys),
        )  # fmt: skip
        read_packed = line.pack([read])
        backoff = ReadBackoff(f"shard {shard} of {self._channels}")
        needs_groups = True
        while not self._closed:  # a flag, as a cancelled read may surface as an error
            if len(self._dispatcher) >= READ_AHEAD:
                self._send_deletes(shard)
                self._room.clear()
                await self._room.wait()
                continue
            try:
                if needs_groups:
                    await self._ensure_groups(shard, keys)
                    needs_groups = False
                response = await self._read_once(shard, line, read, read_packed)
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except redis_errors.ResponseError as error:
                if not _stream_or_group_gone(error):
                    logger.error("reading shard %d of %s failed: %s", shard, self._channels, error)
                    await backoff.wait()
                # An idle stream expired (with our group) while we waited on it: make it again.
                needs_groups = True
                continue
            except Exception as error:
                await backoff.failed(error)
                continue
            if not self._closed:
                rows = response.items() if isinstance(response, dict) else response or []
                # The deletes ride in front of whatever the woken receivers send to this server
                # at once (so a channel just emptied never counts as full), and they run before
                # the next read is written, which carries the deletes no reply did.
                self._delete(self._take(list(rows)))
                await asyncio.sleep(0)

    async def _read_once(
        self, shard: int, line: Exchange, read: tuple[Any, ...], read_packed: list[bytes]
    ) -> Any:
        """One blocking read, after the deletes no reply has carried, in the same write."""
        left = self._batcher.take_back(self._layout.shard_tags[shard])
        if not left:
            (response,) = await line.call([read], read_packed)
        else:
            deletes = [call for call, _ in left]
            *deleted, response = await line.call([*deletes, read], line.pack(deletes) + read_packed)
            for (_, carried), outcome in zip(left, deleted, strict=True):
                settle(carried, outcome)
        if isinstance(response, redis_errors.ResponseError):
            raise response
        return response

    def _take(self, rows: list[Any]) -> list[tuple[bytes, list[bytes]]]:
        """Queue the live messages of a read; returns the ids read, per stream, to delete."""
        oldest_alive = (time.time() - self._expiry) * 1000
        taken: list[tuple[bytes, list[bytes]]] = []
        for key, items in rows:
            ids = []
            channel = self._layout.channel_of_stream(key.decode())
            for entry_id, fields in items:
                ids.append(entry_id)
                payload = (fields or {}).get(b"m")
                if payload is None or int(entry_id.split(b"-", 1)[0]) < oldest_alive:
                    continue
                try:
                    message = codec.decode(payload)
                except Exception as error:
                    self._on_malformed(f"a message of {key!r} that does not decode ({error})")
                    continue
                self._dispatcher.offer(Delivery(channel, message))
            if ids:
                taken.append((key, ids))
        return taken

    def _delete(self, taken: list[tuple[bytes, list[bytes]]]) -> None:
        """Delete what was taken, in front of the next call to its server."""
        for key, ids in taken:
            deleted = self._batcher.ride(KeyLayout.tag_of(key.decode()), "XDEL", key, *ids)
            deleted.add_done_callback(_log_failed_delete)

    def _send_deletes(self, shard: int) -> None:
        """Queue the deletes no call carried as commands of their own."""
        tag = self._layout.shard_tags[shard]
        for call, carried in self._batcher.take_back(tag):
            carried.cancel()
            self._batcher.enqueue(tag, *call).add_done_callback(_log_failed_delete)


def _log_failed_delete(deleted: asyncio.Future[Any]) -> None:
    if not deleted.cancelled() and deleted.exception() is not None:
        # the entries expire with their stream anyway
        logger.info("could not delete taken entries (%s)", deleted.exception())
