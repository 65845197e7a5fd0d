"""In-process, on the in-memory and the Redis layer: an async consumer that lets a CancelledError
of its own escape gets its socket closed and a log line (its connection is not stuck forever); a
worker whose every consumer thread is stuck past the time limit reports it on ``/healthz`` and
``/readyz`` and stops."""

import asyncio
import logging
import threading

import httpx
from prometheus_client import CollectorRegistry

from channelworks import route, routing
from channelworks.process import probes
from channelworks_worker import metrics, runtime, safeguards

from .support import eventually, running, sample

MESSAGES = "channelworks_worker_messages_total"


def make_worker(layer, routes, registry, **kwargs):
    return runtime.Worker(layer, routing.Router(routes), metrics.WorkerMetrics(registry), **kwargs)


async def test_an_escaping_cancelled_error_closes_the_socket_and_the_connection_moves_on(
    layer, registry, caplog
):
    async def consumer(message):
        if message["text"] == "cancel":
            raise asyncio.CancelledError()
        await message.reply_channel.asend({"text": f"echo:{message['text']}"})

    worker = make_worker(layer, [route("websocket.receive", consumer)], registry)
    name = await layer.new_channel("test.")
    for order, text in enumerate(["cancel", "next"], start=1):
        await layer.send(
            "websocket.receive", {"reply_channel": name, "path": "/", "text": text, "order": order}
        )
    with caplog.at_level(logging.ERROR, logger="channelworks_worker.runtime"):
        async with running(worker):
            assert await asyncio.wait_for(layer.receive(name), 10) == {"close": True}
            assert await asyncio.wait_for(layer.receive(name), 10) == {"text": "echo:next"}
    assert sample(registry, MESSAGES, channel="websocket.receive", outcome="error") == 1
    failures = [r.getMessage() for r in caplog.records if "consumer failed" in r.getMessage()]
    assert len(failures) == 1
    assert "ConsumerCancelled" in failures[0]
    assert "let CancelledError escape" in failures[0]


async def test_a_worker_whose_threads_are_all_stuck_is_not_live_nor_ready_and_stops(
    layer, registry
):
    release = threading.Event()

    def consumer(message):
        release.wait(60)

    limits = safeguards.Safeguards(time_limit=0.3)
    worker = make_worker(
        layer, [route("websocket.receive", consumer)], registry, concurrency=1, limits=limits
    )
    server = probes.ProbeServer(
        "127.0.0.1", 0, CollectorRegistry(), ready=lambda: worker.ready, live=lambda: worker.live
    )
    await server.start()
    try:
        task = asyncio.create_task(worker.run())
        await eventually(lambda: worker.ready)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            name = await layer.new_channel("test.")
            await layer.send("websocket.receive", {"reply_channel": name, "path": "/", "text": "x"})
            await eventually(lambda: not worker.live)
            assert (await client.get("/healthz")).status_code == 503
            assert (await client.get("/readyz")).status_code == 503
        await asyncio.wait_for(task, 10)  # it stopped itself
        assert sample(registry, "channelworks_worker_stuck_threads") == 1
    finally:
        release.set()
        await server.close()


async def test_an_async_consumer_past_the_time_limit_is_cancelled_and_its_connection_moves_on(
    layer, registry
):
    cancelled = []

    async def consumer(message):
        if message["text"] == "hang":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append(message["text"])
                raise
        await message.reply_channel.asend({"text": f"echo:{message['text']}"})

    limits = safeguards.Safeguards(time_limit=0.3)
    worker = make_worker(layer, [route("websocket.receive", consumer)], registry, limits=limits)
    name = await layer.new_channel("test.")
    for order, text in enumerate(["hang", "next"], start=1):
        await layer.send(
            "websocket.receive", {"reply_channel": name, "path": "/", "text": text, "order": order}
        )
    async with running(worker):
        assert await asyncio.wait_for(layer.receive(name), 10) == {"close": True}
        assert await asyncio.wait_for(layer.receive(name), 10) == {"text": "echo:next"}
        assert worker.live
    assert cancelled == ["hang"]
    assert sample(registry, MESSAGES, channel="websocket.receive", outcome="timeout") == 1
    assert sample(registry, "channelworks_worker_stuck_threads") == 0
