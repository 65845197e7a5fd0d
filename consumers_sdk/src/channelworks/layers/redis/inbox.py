"""The process inbox: one list per process holds every message for its process-specific channels.

One blocking read (BLMPOP) drains it, and the messages are fanned out here to the local channels
they name; a group send to many sockets of this process arrives as one entry naming all of them.
Reading the inbox is at-most-once: a process that dies loses what it had taken, as its sockets
die with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgpack

from channelworks.layers import codec
from channelworks.layers.redis.batcher import is_retryable
from channelworks.layers.redis.connection import BLOCK_SECONDS
from channelworks.layers.redis.wire import Exchange

logger = logging.getLogger(__name__)
_BATCH = 1000


def pack_entry(locals_: str, payload: bytes) -> bytes:
    """An inbox entry: the local channel names it is for (comma-separated), when it was sent,
    the encoded message."""
    packed: bytes = msgpack.packb([locals_, time.time(), payload], use_bin_type=True)
    return packed


class _LocalChannel:
    """What one local channel holds: encoded messages with their send time, and its waiters."""

    __slots__ = ("capacity", "messages", "waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.messages: deque[tuple[float, bytes]] = deque()
        self.waiters: deque[asyncio.Future[None]] = deque()


class Inbox:
    """Reads one process inbox and queues messages per local channel."""

    def __init__(
        self,
        line: Exchange,
        key: str,
        expiry: float,
        capacity_of: Callable[[str], int],
        on_overflow: Callable[[str], None],
    ) -> None:
        self._line = line
        self._key = key
        self._expiry = expiry
        self._capacity_of = capacity_of
        self._on_overflow = on_overflow
        self._channels: dict[str, _LocalChannel] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    async def receive(self, local: str, full_name: str) -> dict[str, Any]:
        """The next message of one local channel (waits as long as it takes)."""
        self._ensure_reader()
        channel = self._channel(local)
        while True:
            now = time.time()
            while channel.messages:
                sent, payload = channel.messages.popleft()
                if now - sent <= self._expiry:
                    if not channel.messages and not channel.waiters:
                        self._channels.pop(local, None)
                    return codec.decode(payload)
            waiter = asyncio.get_running_loop().create_future()
            channel.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in channel.waiters:
                    channel.waiters.remove(waiter)
            channel = self._channel(local)

    def _channel(self, local: str) -> _LocalChannel:
        channel = self._channels.get(local)
        if channel is None:
            channel = self._channels[local] = _LocalChannel(self._capacity_of(local))
        return channel

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_forever())

    async def _read_forever(self) -> None:
        delay = 0.05
        pruned = time.monotonic()
        while not self._closed:  # a flag, as a cancelled read may surface as an error
            if time.monotonic() - pruned > self._expiry:
                self._prune_expired()
                pruned = time.monotonic()
            try:
                popped = await self._pop()
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not is_retryable(error):
                    logger.exception("reading inbox %s failed", self._key)
                else:
                    logger.info("inbox %s: Redis unavailable (%s), retrying", self._key, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if popped:
                for entry in popped[1]:
                    self._deliver(entry)
                # Let the receivers just woken run first (a reply they send goes out before
                # the next read is written: that read is off the round trip's critical path).
                await asyncio.sleep(0)

    async def _pop(self) -> Any:
        return await self._line.one("BLMPOP", BLOCK_SECONDS, 1, self._key, "LEFT", "COUNT", _BATCH)

    def _deliver(self, entry: bytes) -> None:
        """Queue one inbox entry for each local channel it names.

        The encoded message is queued, and each ``receive`` decodes its own copy (as
        channels_redis' pub/sub layer does): the members of a broadcast never share a dict,
        and a message that expires unread is never decoded."""
        locals_, sent, payload = msgpack.unpackb(entry, raw=False)
        if isinstance(locals_, str):
            locals_ = locals_.split(",")
        channels = self._channels
        item = (sent, payload)
        for local in locals_:
            channel = channels.get(local) or self._channel(local)
            messages = channel.messages
            if len(messages) >= channel.capacity:
                messages.popleft()
                self._on_overflow(local)
            messages.append(item)
            waiters = channel.waiters
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break

    def _prune_expired(self) -> None:
        """Forget local channels whose messages all expired and that nobody waits on."""
        oldest_alive = time.time() - self._expiry
        for local, channel in list(self._channels.items()):
            if not channel.waiters and all(sent < oldest_alive for sent, _ in channel.messages):
                del self._channels[local]

    def forget(self, local: str) -> None:
        """Drop what is buffered for a local channel nobody will read again."""
        self._channels.pop(local, None)

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        await self._line.close()
