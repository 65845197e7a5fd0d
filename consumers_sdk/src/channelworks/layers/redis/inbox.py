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
from dataclasses import dataclass, field
from typing import Any

import msgpack

from channelworks.layers import codec
from channelworks.layers.redis.batcher import is_retryable
from channelworks.layers.redis.connection import BLOCK_SECONDS, Client

logger = logging.getLogger(__name__)
_BATCH = 1000


def pack_entry(locals_: list[str], payload: bytes) -> bytes:
    """An inbox entry: the local channel names it is for, when it was sent, the message."""
    packed: bytes = msgpack.packb([locals_, time.time(), payload], use_bin_type=True)
    return packed


@dataclass
class _LocalChannel:
    messages: deque[tuple[float, dict[str, Any]]] = field(default_factory=deque)
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class Inbox:
    """Reads one process inbox and queues messages per local channel."""

    def __init__(
        self,
        client: Client,
        key: str,
        expiry: float,
        capacity_of: Callable[[str], int],
        on_overflow: Callable[[str], None],
    ) -> None:
        self._client = client
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
        channel = self._channels.setdefault(local, _LocalChannel())
        while True:
            now = time.time()
            while channel.messages:
                sent, message = channel.messages.popleft()
                if now - sent <= self._expiry:
                    if not channel.messages and not channel.waiters:
                        self._channels.pop(local, None)
                    return message
            waiter = asyncio.get_running_loop().create_future()
            channel.waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in channel.waiters:
                    channel.waiters.remove(waiter)
            channel = self._channels.setdefault(local, _LocalChannel())

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
                popped = await self._client.blmpop(
                    BLOCK_SECONDS, 1, self._key, direction="LEFT", count=_BATCH
                )
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
                    self._deliver(entry)  # type: ignore[arg-type]  # BLMPOP gives bytes

    def _deliver(self, entry: bytes) -> None:
        """Queue one inbox entry for each local channel it names.

        The message is decoded once and the same dict goes to every local channel of a
        broadcast (as channels_redis' pub/sub layer does): consumers must not mutate it."""
        locals_, sent, payload = msgpack.unpackb(entry, raw=False)
        message = codec.decode(payload)
        for local in locals_:
            channel = self._channels.setdefault(local, _LocalChannel())
            if len(channel.messages) >= self._capacity_of(local):
                channel.messages.popleft()
                self._on_overflow(local)
            channel.messages.append((sent, message))
            while channel.waiters:
                waiter = channel.waiters.popleft()
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
