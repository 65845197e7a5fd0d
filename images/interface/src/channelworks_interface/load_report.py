"""Telling the operator how many WebSockets this process holds and how busy it is (interface
autoscaling's input).

Every ``EVERY_SECONDS`` the count of open sockets and the CPU this process used since the last
report (``CpuMeter``: percent of one core, all its threads) go into the channel layer under the
pod's name (``ChannelworksLayer.report_load``); a report lives ``TTL_SECONDS``, so a pod that is
gone stops counting within that time. When draining begins the process reports 0 sockets and
0 CPU once (within half a second) and then nothing: its sockets are on their way to the other
pods, which count them. A failed report is logged and tried again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable

from channelworks.layers import ChannelworksLayer
from channelworks_interface.connections import Connections

logger = logging.getLogger(__name__)
EVERY_SECONDS = 5.0
TTL_SECONDS = 3 * EVERY_SECONDS
LAST_REPORT_SECONDS = 0.5  # the final 0 on the way out: no longer than this


class CpuMeter:
    """The CPU this process used between two calls of ``percent``, in percent of one core
    (``cpu`` and ``wall`` are the clocks: injectable for tests)."""

    def __init__(
        self,
        cpu: Callable[[], float] = time.process_time,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cpu = cpu
        self._wall = wall
        self._last = (cpu(), wall())

    def percent(self) -> float:
        now = (self._cpu(), self._wall())
        used, elapsed = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        return max(0.0, 100.0 * used / elapsed) if elapsed > 0 else 0.0


class LoadReporter:
    def __init__(self, layer: ChannelworksLayer, connections: Connections) -> None:
        self._layer = layer
        self._connections = connections
        self._member = socket.gethostname()  # the pod's name in Kubernetes
        self._task: asyncio.Task[None] | None = None
        self._cpu = CpuMeter()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop reporting; the last report says 0 (a drain quicker than the loop's check)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(LAST_REPORT_SECONDS):
                await self._layer.report_load(self._member, 0, TTL_SECONDS, cpu_percent=0.0)

    async def _run(self) -> None:
        while True:
            draining = self._connections.draining
            # Draining: 0, once, so the sockets that reconnect elsewhere are not counted twice.
            count = 0 if draining else len(self._connections.sockets)
            cpu = 0.0 if draining else self._cpu.percent()
            try:
                await self._layer.report_load(self._member, count, TTL_SECONDS, cpu_percent=cpu)
            except Exception as error:  # the layer is down: readiness says so; try again later
                logger.debug("cannot report the open connections: %s", error)
            if draining:
                return
            await self._sleep_unless_draining(EVERY_SECONDS)

    async def _sleep_unless_draining(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when draining begins (checked every 0.5 s)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self._connections.draining:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.sleep(min(0.5, left))
