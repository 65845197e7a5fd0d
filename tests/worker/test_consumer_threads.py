"""The threads sync consumers run in: results come back, at most `size` at once, clean stop."""

import asyncio
import threading

import pytest

from channelworks_worker.consumer_threads import ConsumerThreads

from .support import eventually


async def test_results_and_errors_come_back_from_the_threads():
    threads = ConsumerThreads(asyncio.get_running_loop(), 4, "test-consumer")
    try:
        assert await threads.run(lambda a, b: a + b, 2, 3) == 5
        name = await threads.run(lambda: threading.current_thread().name)
        assert name.startswith("test-consumer-")

        def fails():
            raise ValueError("from the consumer")

        with pytest.raises(ValueError, match="from the consumer"):
            await threads.run(fails)
    finally:
        threads.shutdown()


async def test_many_calls_at_once_each_get_their_own_result():
    threads = ConsumerThreads(asyncio.get_running_loop(), 16, "test-consumer")
    try:
        results = await asyncio.gather(*(threads.run(lambda n=n: n * n) for n in range(2000)))
        assert results == [n * n for n in range(2000)]
    finally:
        threads.shutdown()


async def test_no_more_than_size_calls_run_at_once():
    threads = ConsumerThreads(asyncio.get_running_loop(), 2, "test-consumer")
    gate = threading.Event()
    started: list[int] = []

    def blocked(number):
        started.append(number)
        gate.wait(10)
        return number

    try:
        calls = [asyncio.ensure_future(threads.run(blocked, n)) for n in range(3)]
        await eventually(lambda: len(started) == 2)
        await asyncio.sleep(0.2)
        assert len(started) == 2  # the third waits for a free thread
        gate.set()
        assert sorted(await asyncio.gather(*calls)) == [0, 1, 2]
    finally:
        gate.set()
        threads.shutdown()


async def test_shutdown_drops_waiting_calls_and_lets_running_ones_finish():
    threads = ConsumerThreads(asyncio.get_running_loop(), 1, "test-consumer")
    gate, running = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow():
        running.set()
        gate.wait(10)
        finished.append("slow")
        return "slow"

    first = asyncio.ensure_future(threads.run(slow))
    waiting = asyncio.ensure_future(threads.run(finished.append, "never"))
    await eventually(running.is_set)
    threads.shutdown()
    gate.set()
    assert await first == "slow"
    with pytest.raises(asyncio.CancelledError):
        await waiting
    with pytest.raises(RuntimeError, match="shut down"):
        await threads.run(print)
    await eventually(
        lambda: not any(t.name.startswith("test-consumer") for t in threading.enumerate())
    )
    assert finished == ["slow"]
