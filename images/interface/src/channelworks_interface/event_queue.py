"""The queue of one connection's client events (Daphne's side -> the connection's bridge).

Daphne gives every connection an ``asyncio.Queue``: four deques (items, getters, putters, the
``join`` event's waiters) and an ``asyncio.Event``, about 3 KiB per connection that an idle
WebSocket holds for its whole life. A connection's events have one reader (its bridge) and no
bound, so :class:`EventQueue` keeps only what that needs: the items while any wait (no deque at
all while none do) and the one reader's future while it waits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

Event = dict[str, Any]


class EventQueue:
    """An unbounded FIFO of events with one reader at a time (``asyncio.Queue``'s ``get`` and
    ``put_nowait``)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Event] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, event: Event) -> None:
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(event)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> Event:
        """The oldest event, waiting for one if none is queued. An event stays queued until it
        is returned, so a cancelled ``get`` loses nothing."""
        while self._items is None:
            if self._waiter is not None:
                raise RuntimeError("EventQueue has one reader at a time")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        items = self._items
        event = items.popleft()
        if not items:
            self._items = None
        return event

    def qsize(self) -> int:
        return 0 if self._items is None else len(self._items)

    def empty(self) -> bool:
        return self._items is None
