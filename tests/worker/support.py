"""Helpers for the worker tests: run a worker for a block, read a metric."""

import asyncio
from contextlib import asynccontextmanager

from channelworks import asgi, route, routing
from channelworks_worker import metrics, runtime
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


def echo(message):
    """A sync Channels-1 consumer answering a frame with its text (bench/ws.py's echo)."""
    message.reply_channel.send({"text": message["text"]})


@asynccontextmanager
async def running_echo_worker(layer, registry):
    """A worker on ``layer`` running :func:`echo` for ``websocket.receive``, for the block; the
    process's default layer is ``layer`` meanwhile (what the consumer's reply goes through)."""
    saved = asgi.channel_layers.set("default", layer)
    worker = runtime.Worker(
        layer,
        routing.Router([route("websocket.receive", echo)]),
        metrics.WorkerMetrics(registry),
    )
    try:
        async with running(worker):
            yield worker
    finally:
        asgi.channel_layers.set("default", saved)


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0
