"""In-memory layer: one process, any number of event loops and threads (dev mode, tests).

Messages are stored msgpack-encoded, so the size limit and encodability checks are the same as on
Redis and a receiver never shares a dict with the sender.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from channelworks.exceptions import ChannelFull
from channelworks.layers import codec, naming
from channelworks.layers.base import ChannelworksLayer, WorkReceiver
from channelworks.layers.config import layer_config
from channelworks.layers.ordering import Delivery, KeyedDispatcher, ordering_key
from channelworks.layers.stats import ChannelStats, QueueStats


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class _Queue:
    items: deque[tuple[float, float, bytes]] = field(default_factory=deque)  # sent, expires, data
    waiters: list[_Waiter] = field(default_factory=list)


class InMemoryChannelLayer(ChannelworksLayer):
    """The full layer API in one process; ``CONFIG`` takes the same keys as the Redis layer."""

    def __init__(self, **config: Any) -> None:
        config.pop("hosts", None)
        super().__init__(layer_config(**config))
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}
        self._groups: dict[str, dict[str, float]] = {}
        self._process = secrets.token_hex(4)
        self._rotation = itertools.count()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        naming.require_valid_channel_name(channel)
        self._put(channel, codec.encode(message, self.config.max_message_size), strict=True)

    def _put(self, channel: str, data: bytes, strict: bool) -> None:
        now = time.monotonic()
        with self._lock:
            queue = self._queues.setdefault(channel, _Queue())
            self._drop_expired(queue, now)
            if len(queue.items) >= self.get_capacity(channel):
                self.channel_full_count += 1
                if strict:
                    raise ChannelFull(
                        f"channel {channel!r} is full: it holds its capacity of "
                        f"{self.get_capacity(channel)} messages"
                    )
                return
            queue.items.append((now, now + self.config.expiry, data))
            waiters, queue.waiters = queue.waiters, []
        for waiter in waiters:
            waiter.wake()

    @staticmethod
    def _drop_expired(queue: _Queue, now: float) -> None:
        while queue.items and queue.items[0][1] <= now:
            queue.items.popleft()

    def _take(self, channels: Sequence[str]) -> tuple[str, bytes] | None:
        now = time.monotonic()
        start = next(self._rotation) % len(channels)
        with self._lock:
            for index in range(len(channels)):
                channel = channels[(start + index) % len(channels)]
                queue = self._queues.get(channel)
                if queue is None:
                    continue
                self._drop_expired(queue, now)
                if queue.items:
                    return channel, queue.items.popleft()[2]
        return None

    async def receive(self, channel: str) -> dict[str, Any]:
        while True:
            received = await self.receive_many([channel], timeout=60.0)
            if received is not None:
                return received[1]

    async def receive_many(
        self, channels: Sequence[str], timeout: float | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        for channel in channels:
            naming.require_valid_channel_name(channel)
        deadline = None if timeout is None else time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        while True:
            taken = self._take(channels)
            if taken is not None:
                return taken[0], codec.decode(taken[1])
            waiter = _Waiter(loop, loop.create_future())
            with self._lock:
                for channel in channels:
                    self._queues.setdefault(channel, _Queue()).waiters.append(waiter)
            if self._take_peek(channels):
                waiter.wake()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self._forget(waiter, channels)
                return None
            try:
                async with asyncio.timeout(remaining):  # not wait_for: see ordering.py
                    await waiter.future
            except TimeoutError:
                return None
            finally:
                self._forget(waiter, channels)

    def _take_peek(self, channels: Sequence[str]) -> bool:
        with self._lock:
            return any(self._queues[channel].items for channel in channels)

    def _forget(self, waiter: _Waiter, channels: Sequence[str]) -> None:
        with self._lock:
            for channel in channels:
                queue = self._queues.get(channel)
                if queue is not None and waiter in queue.waiters:
                    queue.waiters.remove(waiter)

    async def new_channel(self, prefix: str = "specific.") -> str:
        return self._new_channel_name(prefix, self._process)

    async def group_add(self, group: str, channel: str) -> None:
        naming.require_valid_group_name(group)
        naming.require_valid_channel_name(channel)
        with self._lock:
            self._groups.setdefault(group, {})[channel] = time.monotonic() + self.group_expiry

    async def group_discard(self, group: str, channel: str) -> None:
        naming.require_valid_group_name(group)
        naming.require_valid_channel_name(channel)
        with self._lock:
            members = self._groups.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._groups[group]

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        naming.require_valid_group_name(group)
        data = codec.encode(message, self.config.max_message_size)
        now = time.monotonic()
        with self._lock:
            members = self._groups.get(group, {})
            live = [channel for channel, expires in members.items() if expires > now]
        for channel in live:
            self._put(channel, data, strict=False)

    async def flush(self) -> None:
        with self._lock:
            waiters = [w for queue in self._queues.values() for w in queue.waiters]
            self._queues.clear()
            self._groups.clear()
        for waiter in waiters:
            waiter.wake()

    def work_receiver(self, channels: Sequence[str], group: str = "workers") -> WorkReceiver:
        return _MemoryWorkReceiver(self, list(channels))

    async def queue_stats(self) -> QueueStats:
        now = time.monotonic()
        stats: dict[str, ChannelStats] = {}
        with self._lock:
            for channel, queue in self._queues.items():
                self._drop_expired(queue, now)
                if queue.items and not naming.is_process_specific(channel):
                    stats[channel] = ChannelStats(len(queue.items), now - queue.items[0][0])
        return QueueStats(channels=stats)


class _MemoryWorkReceiver(WorkReceiver):
    """Ordered consumption in one process; nothing to redeliver, as no other process exists."""

    def __init__(self, layer: InMemoryChannelLayer, channels: list[str]) -> None:
        self._layer = layer
        self._channels = channels
        self._dispatcher = KeyedDispatcher()
        self._receiving: asyncio.Task[tuple[str, dict[str, Any]] | None] | None = None
        self._stopped = False

    async def get(self, timeout: float | None = None) -> Delivery | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped:
            self._dispatcher.release_overdue()
            delivery = self._dispatcher.next_ready()
            if delivery is not None:
                return delivery
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            if self._receiving is None:
                self._receiving = asyncio.create_task(self._layer.receive_many(self._channels))
            receiving = self._receiving
            wait = 0.5 if remaining is None else min(remaining, 0.5)
            changed = asyncio.create_task(self._dispatcher.wait_changed(wait))
            await asyncio.wait({receiving, changed}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            if receiving.done() and self._receiving is receiving:
                received, self._receiving = receiving.result(), None
                if received is not None:
                    channel, message = received
                    key = ordering_key(message)
                    self._dispatcher.offer(Delivery(channel, message, key, self._acked))
        return None

    async def _acked(self, delivery: Delivery) -> None:
        self._dispatcher.done(delivery)

    async def stop(self, timeout: float | None = None) -> None:
        self._stopped = True
        if self._receiving is not None:
            self._receiving.cancel()
            self._receiving = None
