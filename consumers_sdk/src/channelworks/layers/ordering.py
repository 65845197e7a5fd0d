"""Per-connection ordering inside one process.

Messages are keyed by their ``reply_channel`` (one key per connection). For each key at most one
delivery is out at a time; the next is handed out only when the previous one is acked. When
messages carry Channels 1's ``order`` field, a message whose predecessor has not been seen yet is
held back for up to ``hold_seconds`` (the predecessor may still be on its way from another
stream), then released so a lost message never stalls a connection forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Ack = Callable[[], Awaitable[None]]
_IDLE_KEY_SECONDS = 300.0


@dataclass
class Delivery:
    """One message handed to a worker; call :meth:`ack` once it has been handled."""

    channel: str
    message: dict[str, Any]
    key: str | None = None
    _on_ack: Callable[[Delivery], Awaitable[None]] | None = field(default=None, repr=False)
    _acked: bool = field(default=False, repr=False)
    # Counts the hand-out where the layer keeps a count that outlives the worker (Redis).
    _on_start: Callable[[bool], Awaitable[int]] | None = field(default=None, repr=False)
    # Queues the ack's writes ahead, where the layer can keep them behind the worker's replies.
    _on_queue_ack: Callable[[Delivery], None] | None = field(default=None, repr=False)

    async def start(self, exact: bool = True) -> int:
        """Record that a worker is about to run the message; return its delivery number (1 the
        first time, more after workers died holding it; always 1 on layers that do not count).

        ``exact=False`` lets the layer skip waiting for the count when the message cannot have
        been handed out before (it arrived after this worker took its shard); the hand-out is
        still recorded. ``exact=True`` always waits (what at-most-once work needs)."""
        if self._on_start is None:
            return 1
        return await self._on_start(exact)

    def queue_ack(self) -> None:
        """The message is handled: queue the ack's writes now, so they go out with the sends
        the caller makes next in this loop turn (a consumer's replies) and behind them,
        instead of in a round trip of their own after them. :meth:`ack` must still be awaited
        (the connection's next message goes only then). A layer that cannot keep the writes
        behind those sends (several Redis servers) ignores this."""
        if self._on_queue_ack is not None and not self._acked:
            self._on_queue_ack(self)

    async def ack(self) -> None:
        """Mark the message handled: it will not be redelivered and its successor may go out."""
        if self._acked:
            return
        self._acked = True
        if self._on_ack is not None:
            await self._on_ack(self)


def ordering_key(message: dict[str, Any]) -> str | None:
    """The key that serialises a message: its connection's reply channel, when it has one."""
    key = message.get("reply_channel")
    return key if isinstance(key, str) else None


def message_order(message: dict[str, Any]) -> int | None:
    order = message.get("order")
    return order if isinstance(order, int) and not isinstance(order, bool) else None


@dataclass
class _KeyState:
    busy: bool = False
    last_order: int | None = None
    held: list[tuple[int, int, float, Delivery]] = field(default_factory=list)
    touched: float = 0.0


class KeyedDispatcher:
    """Hands out deliveries: in order and one at a time per key, in parallel across keys."""

    def __init__(self, hold_seconds: float = 2.0) -> None:
        self._hold_seconds = hold_seconds
        self._keys: dict[str | None, _KeyState] = {}
        self._gapped: set[str | None] = set()  # keys whose next message awaits a predecessor
        self._held = 0
        self._ready: dict[str, deque[Delivery]] = {}  # per channel, served round-robin
        self._changed = asyncio.Event()
        self._arrival = itertools.count()
        self._last_prune = time.monotonic()

    def __len__(self) -> int:
        """Deliveries waiting here (ready or held), not counting those handed out."""
        ready = sum(len(queue) for queue in self._ready.values())
        return ready + self._held

    def offer(self, delivery: Delivery) -> None:
        """Accept a message taken from the layer."""
        if delivery.key is None:
            self._make_ready(delivery)
            return
        state = self._keys.setdefault(delivery.key, _KeyState())
        order = message_order(delivery.message)
        sort_order = order if order is not None else -1
        heapq.heappush(state.held, (sort_order, next(self._arrival), time.monotonic(), delivery))
        self._held += 1
        self._release(delivery.key, state)

    def done(self, delivery: Delivery) -> None:
        """The delivery was acked (or given up): let the next one of its key go."""
        state = self._keys.get(delivery.key) if delivery.key is not None else None
        if state is None:
            return
        state.busy = False
        self._release(delivery.key, state)
        self._prune()

    def next_ready(self) -> Delivery | None:
        """The next delivery, taking channels in turn so a busy one cannot starve the rest."""
        for channel in self._ready:
            queue = self._ready.pop(channel)
            delivery = queue.popleft()
            if queue:
                self._ready[channel] = queue  # to the back of the rotation
            return delivery
        self._changed.clear()
        return None

    def _make_ready(self, delivery: Delivery) -> None:
        queue = self._ready.get(delivery.channel)
        if queue is None:
            queue = self._ready[delivery.channel] = deque()
        queue.append(delivery)
        self._changed.set()

    async def wait_changed(self, timeout: float | None) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # races the event, and a worker stopping by cancel() would then never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    def release_overdue(self) -> None:
        """Release held messages whose predecessor did not arrive within ``hold_seconds``."""
        for key in list(self._gapped):
            self._release(key, self._keys[key])

    def _release(self, key: str | None, state: _KeyState) -> None:
        if state.busy or not state.held:
            return
        order, _, held_since, delivery = state.held[0]
        in_sequence = (
            order < 0
            or state.last_order is None
            or order <= state.last_order + 1
            or time.monotonic() - held_since >= self._hold_seconds
        )
        if not in_sequence:
            self._gapped.add(key)
            return
        self._gapped.discard(key)
        heapq.heappop(state.held)
        self._held -= 1
        state.busy = True
        state.touched = time.monotonic()
        if order >= 0:
            state.last_order = order
        self._make_ready(delivery)

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < _IDLE_KEY_SECONDS / 10:
            return
        self._last_prune = now
        for key, state in list(self._keys.items()):
            if not state.busy and not state.held and now - state.touched > _IDLE_KEY_SECONDS:
                del self._keys[key]
