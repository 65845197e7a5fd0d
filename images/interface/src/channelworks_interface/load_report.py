"""Telling the operator how many WebSockets this process holds (interface autoscaling's input).

Every ``EVERY_SECONDS`` the count of open sockets goes into the channel layer under the pod's
name (``ChannelworksLayer.report_load``); a report lives ``TTL_SECONDS``, so a pod that is gone
stops counting within that time. While draining the process reports nothing more: its sockets
are on their way to the other pods. A failed report is logged and tried again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from channelworks.layers import ChannelworksLayer
from channelworks_interface.connections import Connections

logger = logging.getLogger(__name__)
EVERY_SECONDS = 5.0
TTL_SECONDS = 3 * EVERY_SECONDS


class LoadReporter:
    def __init__(self, layer: ChannelworksLayer, connections: Connections) -> None:
        self._layer = layer
        self._connections = connections
        self._member = socket.gethostname()  # the pod's name in Kubernetes
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._connections.draining:
            try:
                await self._layer.report_load(
                    self._member, len(self._connections.sockets), TTL_SECONDS
                )
            except Exception as error:  # the layer is down: readiness says so; try again later
                logger.debug("cannot report the open connections: %s", error)
            await asyncio.sleep(EVERY_SECONDS)
