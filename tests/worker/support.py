"""Helpers for the worker tests: run a worker for a block, read a metric."""

import asyncio
from contextlib import asynccontextmanager

from tests.support.eventually import eventually_async


async def eventually(predicate, timeout=10.0):
    """Wait (without blocking the loop) until ``predicate()`` is true."""
    return await eventually_async(predicate, timeout=timeout, interval=0.01)


@asynccontextmanager
async def running(worker):
    """Run ``worker`` in a task for the block; stop it and wait for it to return after."""
    task = asyncio.create_task(worker.run())
    await eventually(lambda: worker.ready or task.done())
    try:
        yield task
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0
