"""``websocket.disconnect`` always reaches the layer, even when its channel is full.

A worker learns that a socket closed only from this message; without it the socket's group
memberships stay (until ``group_expiry``, a day by default) and its channel session is never
deleted. So a disconnect that does not fit (``ChannelFull``) or meets a failing layer is not
dropped as other messages are: it is queued in this process and sent again, oldest first, with a
growing pause (50 ms to 1 s), until it fits. The queue outlives the socket's application instance
(Daphne cancels that soon after the close). Bounded: at most ``max_pending`` disconnects wait (the
oldest is given up past that, counted and logged), and a draining process waits for the queue
until its exit deadline.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from channelworks.layers import ChannelworksLayer, naming
from channelworks_interface.metrics import PROTOCOL_WEBSOCKET, Metrics

logger = logging.getLogger(__name__)
DISCONNECT_CHANNEL = "websocket.disconnect"
DEFAULT_MAX_PENDING = 100_000  # a few hundred bytes each: tens of MB at most
FIRST_PAUSE_SECONDS = 0.05
LONGEST_PAUSE_SECONDS = 1.0


class DisconnectOutbox:
    """Sends disconnects; keeps and resends those the layer did not take."""

    def __init__(
        self, layer: ChannelworksLayer, metrics: Metrics, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        self._layer = layer
        self._metrics = metrics
        self._max_pending = max_pending
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0  # first tries under way
        self._empty = asyncio.Event()
        self._empty.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def send(self, message: dict[str, Any]) -> None:
        """Send ``message`` now, or queue it to be sent again; never raises. Cancelling the
        caller (Daphne ending the application instance) does not cancel the sending."""
        await asyncio.shield(self._deliver(message))

    async def _deliver(self, message: dict[str, Any]) -> None:
        self._in_flight += 1
        self._empty.clear()
        try:
            if not self._pending and await self._try(message, first=True):
                return
            self._queue(message)
        finally:
            self._in_flight -= 1
            self._settled()

    async def wait_empty(self) -> None:
        """Return once every queued disconnect is on the layer."""
        await self._empty.wait()

    def give_up(self) -> None:
        """The process stops: count and log what is still queued, and stop resending it."""
        if self._pending:
            logger.warning(
                "stopping with %d websocket.disconnect messages not sent; their sockets' groups "
                "keep them until group_expiry",
                len(self._pending),
            )
            self._metrics.disconnects_lost.inc(len(self._pending))
            self._pending.clear()
            self._settled()
        if self._task is not None:
            self._task.cancel()

    # Inside ------------------------------------------------------------------------------------

    async def _try(self, message: dict[str, Any], first: bool) -> bool:
        try:
            await self._layer.send(DISCONNECT_CHANNEL, message)
        except Exception as error:
            if first:
                logger.warning(
                    "websocket.disconnect of %s not sent (%s); sending it again until it fits",
                    naming.loggable(str(message.get("reply_channel", ""))),
                    type(error).__name__,
                )
            return False
        self._metrics.message_in(PROTOCOL_WEBSOCKET)
        return True

    def _queue(self, message: dict[str, Any]) -> None:
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            self._metrics.disconnects_lost.inc()
            logger.error(
                "%d websocket.disconnect messages wait already; gave up the oldest",
                self._max_pending,
            )
        self._pending.append(message)
        self._metrics.disconnects_retried.inc()
        self._metrics.disconnects_pending.set(len(self._pending))
        self._empty.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._resend())

    async def _resend(self) -> None:
        pause = FIRST_PAUSE_SECONDS
        while self._pending:
            head = self._pending[0]
            if await self._try(head, first=False):
                if self._pending and self._pending[0] is head:
                    self._pending.popleft()
                self._metrics.disconnects_pending.set(len(self._pending))
                pause = FIRST_PAUSE_SECONDS
                continue
            await asyncio.sleep(pause)
            pause = min(LONGEST_PAUSE_SECONDS, pause * 2)
        self._settled()

    def _settled(self) -> None:
        self._metrics.disconnects_pending.set(len(self._pending))
        if not self._pending and not self._in_flight:
            self._empty.set()
