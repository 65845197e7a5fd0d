"""The time limits of the messages a worker awaits in their own tasks, kept by one watcher.

``asyncio.timeout`` around every message costs a timer in the event loop's heap: pushed,
cancelled when the message is done in time (nearly always), and left in the heap until the loop
sweeps it; about 9 µs of CPU per message measured here, a tenth of issue 15's budget for the
whole message. Here a message's task registers its deadline in a dict and takes it out again,
and one watcher task, awake only while a deadline is registered, looks every
``WATCH_SECONDS`` and cancels the tasks past theirs. A limit is therefore enforced up to
``WATCH_SECONDS`` late.

Use it as::

    task = deadlines.start(limit)
    try:
        return await work()
    except asyncio.CancelledError:
        if deadlines.expired(task):
            ...  # past the limit
        raise
    finally:
        deadlines.end(task)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

WATCH_SECONDS = 0.05


class Deadlines:
    """Deadlines of running tasks; :meth:`watch` cancels the tasks that pass theirs."""

    def __init__(self, every: float = WATCH_SECONDS) -> None:
        self._every = every
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._waiting = asyncio.Event()  # set while a deadline is registered

    def start(self, limit: float) -> asyncio.Task[Any]:
        """Give the running task ``limit`` seconds from now; returns the task."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.start() must be called from a task")
        if not self._due:
            self._waiting.set()
        self._due[task] = time.monotonic() + limit
        return task

    def end(self, task: asyncio.Task[Any]) -> None:
        """The task's work is over (in time or not): forget its deadline."""
        self._due.pop(task, None)
        self._expired.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the ``CancelledError`` the task got came from its deadline alone (True: the
        cancellation is taken back); False for any other cancellation (e.g. a drain's)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0

    async def watch(self) -> None:
        """Cancel the tasks past their deadline, every ``every`` seconds while there are any."""
        while True:
            if not self._due:
                self._waiting.clear()
                await self._waiting.wait()
            await asyncio.sleep(self._every)
            now = time.monotonic()
            late = [task for task, due in self._due.items() if due <= now]
            for task in late:
                del self._due[task]
                self._expired.add(task)
                task.cancel()
