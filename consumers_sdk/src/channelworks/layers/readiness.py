"""Whether a process can do its work through the channel layer, for its ``/readyz``.

A ``LayerWatch`` asks the layer (``ChannelworksLayer.check()``) every ``interval`` seconds
whether its servers answer, each check bounded by ``timeout``. It reports not ready only once
the checks have failed for ``grace_seconds`` (counted from the start of the first failed check)
without a success in between, so a failover of a
few seconds does not take every pod of a Service out of it at once; it reports ready again at
the first check that passes. Liveness is not its business: a process that cannot reach Redis
is not broken, restarting it would not help.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from channelworks.layers.base import ChannelworksLayer

logger = logging.getLogger(__name__)
DEFAULT_GRACE_SECONDS = 15.0
DEFAULT_INTERVAL = 2.0


class LayerWatch:
    """See the module docstring; ``start()`` on the process's event loop, ``stop()`` at exit."""

    def __init__(
        self,
        layer: ChannelworksLayer,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        interval: float = DEFAULT_INTERVAL,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._layer = layer
        self._grace = grace_seconds
        self._interval = interval
        self._timeout = timeout if timeout is not None else max(interval, 5.0)
        self._clock = clock
        self._failing_since: float | None = None
        self._problem = ""
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """False once the layer's checks have failed for longer than the grace period."""
        since = self._failing_since
        return since is None or self._clock() - since < self._grace

    @property
    def problem(self) -> str:
        """Why the last check failed ('' after a check that passed)."""
        return self._problem

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check_once(self) -> None:
        """One check, its outcome recorded (a failure counts from when the check began)."""
        started = self._clock()
        try:
            async with asyncio.timeout(self._timeout):
                await self._layer.check()
        except Exception as error:
            problem = str(error) or f"no answer within {self._timeout:.0f}s"
            if self._failing_since is None:
                self._failing_since = started
                logger.warning(
                    "the channel layer does not answer (%s); not ready if this lasts %.0fs",
                    problem,
                    self._grace,
                )
            self._problem = problem
            return
        if self._failing_since is not None:
            logger.info(
                "the channel layer answers again after %.1fs", self._clock() - self._failing_since
            )
        self._failing_since = None
        self._problem = ""

    async def _watch(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval)
