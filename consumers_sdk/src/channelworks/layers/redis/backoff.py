"""The pause of a reader whose blocking Redis read failed: written once for every reader.

The layer's long-lived readers (a process inbox, a shard owner of a worker group, a plain
consumer) loop on one blocking read each. When a read fails they log it (an error Redis may
recover from, e.g. a restart or a failover, at info level; anything else with its traceback)
and try again after a pause that starts at 50 ms and doubles up to 1 s, back to 50 ms once a
read works. What ends each loop (a closed inbox, a lost lease) stays with the reader.
"""

from __future__ import annotations

import asyncio
import logging

from channelworks.layers.redis.batcher import is_retryable

logger = logging.getLogger(__name__)
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0


class ReadBackoff:
    """The pauses between failed reads of one reader; ``what`` names it in the log."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._pause = FIRST_PAUSE

    def succeeded(self) -> None:
        """A read worked: the next failure pauses briefly again."""
        self._pause = FIRST_PAUSE

    async def failed(self, error: Exception) -> None:
        """Log the failed read, then wait before the next attempt."""
        if is_retryable(error):
            logger.info("%s: Redis unavailable (%s), retrying", self._what, error)
        else:
            logger.error("reading %s failed", self._what, exc_info=error)
        await self.wait()

    async def wait(self) -> None:
        """Wait the current pause; the next one is twice as long (at most ``LONGEST_PAUSE``)."""
        await asyncio.sleep(self._pause)
        self._pause = min(self._pause * 2, LONGEST_PAUSE)
