"""The one watcher that enforces the time limits of a worker's sync consumers (``deadlines``).

It replaces an ``asyncio.timeout`` per message (issue 15: the worker's CPU per message), so it
must keep what that gave: work past its limit is cancelled and told apart from any other
cancellation (a drain's), work in time is left alone, and nothing stays registered after.
"""

import asyncio
import time

from channelworks_worker.deadlines import WATCH_SECONDS, Deadlines


async def limited(deadlines: Deadlines, limit: float, work: float) -> str:
    task = deadlines.start(limit)
    try:
        await asyncio.sleep(work)
        return "done"
    except asyncio.CancelledError:
        if deadlines.expired(task):
            return "past the limit"
        raise
    finally:
        deadlines.end(task)


async def test_work_past_its_limit_is_cancelled_and_work_in_time_is_not():
    deadlines = Deadlines()
    watcher = asyncio.create_task(deadlines.watch())
    try:
        started = time.monotonic()
        outcomes = await asyncio.gather(
            limited(deadlines, 0.2, 5.0), limited(deadlines, 5.0, 0.3), limited(deadlines, 0.5, 0)
        )
        took = time.monotonic() - started
    finally:
        watcher.cancel()
    assert outcomes == ["past the limit", "done", "done"]
    assert took < 0.3 + 1.0  # the limited one did not hold the others up
    assert not deadlines._due and not deadlines._expired


async def test_a_cancellation_from_elsewhere_is_not_taken_for_a_deadline():
    deadlines = Deadlines()
    watcher = asyncio.create_task(deadlines.watch())
    try:
        running = asyncio.create_task(limited(deadlines, 5.0, 5.0))
        await asyncio.sleep(0.1)
        running.cancel()  # what a drain that gives up does
        try:
            await running
        except asyncio.CancelledError:
            cancelled = True
        else:
            cancelled = False
    finally:
        watcher.cancel()
    assert cancelled


async def test_a_limit_is_enforced_at_most_one_watch_period_late():
    deadlines = Deadlines()
    watcher = asyncio.create_task(deadlines.watch())
    try:
        await limited(deadlines, 0.05, 0)  # the watcher idles between messages, then wakes
        started = time.monotonic()
        assert await limited(deadlines, 0.3, 5.0) == "past the limit"
        late = time.monotonic() - started - 0.3
    finally:
        watcher.cancel()
    # One watch period, plus the scheduling of a busy machine.
    assert late < WATCH_SECONDS + 0.5
