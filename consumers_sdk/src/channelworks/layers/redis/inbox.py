"""The process inbox: one list per process holds every message for its process-specific channels.

One blocking read (BLMPOP) drains it, and the messages are fanned out here to the local channels
they name; a group send to many sockets of this process arrives as one entry naming all of them.
Reading the inbox is at-most-once: a process that dies loses what it had taken, as its sockets
die with it.

A local channel may also have a direct handler (:meth:`Inbox.deliver_directly`): a message for it
that arrives while its one receiver waits idle (nothing queued, nothing in that receiver's hands)
is offered to the handler first, synchronously, with the encoded message shared by every member of
the entry; what the handler takes is not handed to the receiver. The interface writes a broadcast
to its sockets that way, decoding and framing it once (no task wakes per socket).
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

from channelworks.layers import codec, naming
from channelworks.layers.redis.backoff import ReadBackoff
from channelworks.layers.redis.connection import BLOCK_SECONDS
from channelworks.layers.redis.wire import Exchange

logger = logging.getLogger(__name__)
_BATCH = 1000


def pack_entry(locals_: str, payload: bytes) -> bytes:
    """An inbox entry: the local channel names it is for (comma-separated), when it was sent,
    the encoded message (a msgpack array of the three)."""
    names: bytes = msgpack.packb(locals_, use_bin_type=True)
    return ENTRY_START + names + entry_tail(payload)


ENTRY_START = b"\x93"  # msgpack: an array of three items follows


def entry_tail(payload: bytes) -> bytes:
    """The end of an inbox entry, after the local names: the same for every process a group
    send writes to, so a script can put each process's names before it."""
    packed: bytes = msgpack.packb(time.time()) + msgpack.packb(payload, use_bin_type=True)
    return packed


_Item = tuple[float, bytes]  # when a message was sent, the message encoded
DirectHandler = Callable[[bytes], bool]  # the encoded message -> True if it took it


class _Queue:
    """Messages of one local channel that no receiver has taken yet."""

    __slots__ = ("capacity", "items")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[_Item] = deque()


class Inbox:
    """Reads one process inbox and queues messages per local channel."""

    def __init__(
        self,
        line: Exchange,
        key: str,
        expiry: float,
        capacity_of: Callable[[str], int],
        on_overflow: Callable[[str], None],
        on_malformed: Callable[[str], None],
    ) -> None:
        self._line = line
        self._key = key
        self._expiry = expiry
        self._capacity_of = capacity_of
        self._on_overflow = on_overflow
        self._on_malformed = on_malformed  # told what was wrong with an entry it skipped
        # Per local channel, either queued messages or receivers waiting, never both: a message
        # for a channel with a receiver waiting is handed to it (no queue, no lookup afterwards).
        self._queues: dict[str, _Queue] = {}
        self._waiters: dict[str, list[asyncio.Future[_Item]]] = {}
        self._direct: dict[str, DirectHandler] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    async def receive(self, local: str, full_name: str) -> dict[str, Any]:
        """The next message of one local channel (waits as long as it takes)."""
        self._ensure_reader()
        while True:
            item = self._take(local)
            if item is None:
                waiter: asyncio.Future[_Item] = asyncio.get_running_loop().create_future()
                waiting = self._waiters.get(local)
                if waiting is None:
                    self._waiters[local] = [waiter]
                else:
                    waiting.append(waiter)
                try:
                    item = await waiter
                except BaseException:
                    self._give_back(local, waiter)
                    raise
                if time.time() - item[0] > self._expiry:
                    continue
            try:
                return codec.decode(item[1])
            except Exception as error:
                channel = naming.loggable(full_name)
                self._on_malformed(f"a message for {channel} that does not decode ({error})")

    def _take(self, local: str) -> _Item | None:
        """The oldest queued message of a local channel that has not expired (expired ones are
        dropped), or None."""
        queue = self._queues.get(local)
        if queue is None:
            return None
        oldest_alive = time.time() - self._expiry
        items = queue.items
        found = None
        while items:
            item = items.popleft()
            if item[0] >= oldest_alive:
                found = item
                break
        if not items:
            del self._queues[local]
        return found

    def _give_back(self, local: str, waiter: asyncio.Future[_Item]) -> None:
        """A receive that stopped waiting (cancelled): a message already handed to it goes to
        the next receiver, or back to the front of the channel's queue."""
        waiting = self._waiters.get(local)
        if waiter.done() and not waiter.cancelled():
            if waiting:
                self._offer(local, waiter.result())
            else:
                self._queue(local).items.appendleft(waiter.result())
        elif waiting is not None and waiter in waiting:
            waiting.remove(waiter)
            if not waiting:
                del self._waiters[local]

    def _queue(self, local: str) -> _Queue:
        queue = self._queues.get(local)
        if queue is None:
            queue = self._queues[local] = _Queue(self._capacity_of(local))
        return queue

    def deliver_directly(self, local: str, handler: DirectHandler | None) -> None:
        """Offer the messages of ``local`` to ``handler`` while its receiver waits idle (None:
        stop). The handler runs inside the inbox reader: it must not block or raise."""
        if handler is None:
            self._direct.pop(local, None)
        else:
            self._direct[local] = handler

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_forever())

    async def _read_forever(self) -> None:
        backoff = ReadBackoff(f"inbox {self._key}")
        pruned = time.monotonic()
        while not self._closed:  # a flag, as a cancelled read may surface as an error
            if time.monotonic() - pruned > self._expiry:
                self._prune_expired()
                pruned = time.monotonic()
            try:
                popped = await self._pop()
                backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await backoff.failed(error)
                continue
            if popped:
                for entry in popped[1]:
                    try:
                        self._deliver(entry)
                    except Exception as error:  # one bad entry, not the rest of the batch
                        self._on_malformed(f"an entry of inbox {self._key} ({error!r})")
                # Let the receivers just woken run first (a reply they send goes out before
                # the next read is written: that read is off the round trip's critical path).
                await asyncio.sleep(0)

    async def _pop(self) -> Any:
        return await self._line.one("BLMPOP", BLOCK_SECONDS, 1, self._key, "LEFT", "COUNT", _BATCH)

    def _deliver(self, entry: bytes) -> None:
        """Hand one inbox entry to each local channel it names.

        The encoded message is passed on, and each ``receive`` decodes its own copy (as
        channels_redis' pub/sub layer does): the members of a broadcast never share a dict,
        and a message that expires unread is never decoded. An entry that is not what
        ``pack_entry`` makes raises ``ValueError`` (or msgpack's error)."""
        locals_, sent, payload = msgpack.unpackb(entry, raw=False)
        if isinstance(locals_, str):
            locals_ = locals_.split(",")
        if not (
            isinstance(locals_, list)
            and all(isinstance(local, str) for local in locals_)
            and isinstance(sent, int | float)
            and isinstance(payload, bytes)
        ):
            raise ValueError("not [local channel names, time sent, encoded message]")
        waiters = self._waiters
        item = (sent, payload)
        # Only a message that has not expired goes to a direct handler (a receiver drops the
        # others); the same bytes object for every member, so a handler can decode it once.
        direct = self._direct if time.time() - sent <= self._expiry else {}
        for local in locals_:
            waiting = waiters.get(local)
            if waiting is not None and len(waiting) == 1 and not waiting[0].done():
                # The common case: one receiver waits idle on the channel.
                handler = direct.get(local)
                if handler is not None and handler(payload):
                    continue
                del waiters[local]
                waiting[0].set_result(item)
            else:
                self._offer(local, item)

    def _offer(self, local: str, item: _Item) -> None:
        """Hand a message to the first receiver waiting on ``local``, else queue it; a full
        queue drops its oldest message (counted)."""
        waiting = self._waiters.get(local)
        while waiting:
            waiter = waiting.pop(0)
            if not waiting:
                del self._waiters[local]
            if not waiter.done():
                waiter.set_result(item)
                return
        queue = self._queue(local)
        if len(queue.items) >= queue.capacity:
            queue.items.popleft()
            self._on_overflow(local)
        queue.items.append(item)

    def _prune_expired(self) -> None:
        """Forget queues whose messages all expired."""
        oldest_alive = time.time() - self._expiry
        for local, queue in list(self._queues.items()):
            if all(sent < oldest_alive for sent, _ in queue.items):
                del self._queues[local]

    def forget(self, local: str) -> None:
        """Drop what is buffered for a local channel nobody will read again."""
        self._queues.pop(local, None)
        self._direct.pop(local, None)

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        await self._line.close()
