"""What the HTTP and WebSocket bridges share: their context, and reading a reply channel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from channelworks.layers import ChannelworksLayer
from channelworks_interface.config import InterfaceConfig
from channelworks_interface.connections import Connections
from channelworks_interface.disconnects import DisconnectOutbox
from channelworks_interface.metrics import Metrics
from channelworks_interface.prepared_frames import PreparedFrames

_CLOSE_WAIT_SECONDS = 1.0
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Bridge:
    """What every connection's bridge shares."""

    config: InterfaceConfig
    layer: ChannelworksLayer
    metrics: Metrics
    connections: Connections
    disconnects: DisconnectOutbox
    frames: PreparedFrames = field(default_factory=PreparedFrames)  # decode and frame once


class ReplyReader:
    """One pending ``layer.receive(reply_channel)`` at a time, kept across waits.

    Waiting with a timeout never cancels the read itself, so no reply is taken from the layer and
    then dropped by a timeout; the read is cancelled only by :meth:`close`.
    """

    def __init__(self, layer: ChannelworksLayer, channel: str) -> None:
        self._layer = layer
        self._channel = channel
        self._task: asyncio.Task[dict[str, Any]] | None = None

    def pending(self) -> asyncio.Task[dict[str, Any]]:
        """The read in progress (started if none is): await it, or put it in ``asyncio.wait``."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._layer.receive(self._channel))
        return self._task

    def take(self) -> dict[str, Any]:
        """The reply of the finished read (re-raising its error); the next read starts anew."""
        task, self._task = self.pending(), None
        return task.result()

    async def close(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            await cancel_and_wait(task)


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it to end, for a second at most.

    Bounded: a layer whose receive swallows a racing cancellation must not keep the connection's
    application instance alive. What it raised is retrieved (and dropped), so asyncio does not log
    it as never retrieved."""
    task.cancel()
    await asyncio.wait({task}, timeout=_CLOSE_WAIT_SECONDS)
    if task.done() and not task.cancelled():
        task.exception()
