"""The worker runtime in-process on the in-memory layer: ordering, parallelism, errors, draining."""

import asyncio
import logging
import random
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from channelworks import Group, exceptions, route, routing
from channelworks_worker import metrics, runtime

from .support import eventually, running, sample

MESSAGES = "channelworks_worker_messages_total"


def make_worker(layer, routes, registry, concurrency=16, **kwargs):
    router = routing.Router(routes)
    return runtime.Worker(
        layer, router, metrics.WorkerMetrics(registry), concurrency=concurrency, **kwargs
    )


async def connection(layer):
    """A reply channel name as an interface process makes them."""
    return await layer.new_channel("test.")


async def reply(layer, name, timeout=5.0):
    """The next message on a connection's reply channel (as its interface process reads it)."""
    return await asyncio.wait_for(layer.receive(name), timeout)


async def send_frames(layer, reply_channel, count, start=0):
    for number in range(start, start + count):
        await layer.send(
            "websocket.receive",
            {"reply_channel": reply_channel, "path": "/", "order": number, "text": str(number)},
        )


async def test_one_connections_messages_are_handled_one_at_a_time_in_order(layer, registry):
    handled = []
    busy = threading.Lock()
    overlaps = []

    def consumer(message):
        if not busy.acquire(blocking=False):
            overlaps.append(message["text"])
            return
        try:
            if random.random() < 0.05:
                time.sleep(0.002)
            handled.append(int(message["text"]))
        finally:
            busy.release()

    worker = make_worker(layer, [route("websocket.receive", consumer)], registry)
    await send_frames(layer, await connection(layer), 1000)
    async with running(worker):
        await eventually(lambda: len(handled) + len(overlaps) == 1000, timeout=60)
    assert overlaps == []
    assert handled == list(range(1000))
    assert sample(registry, MESSAGES, channel="websocket.receive", outcome="ok") == 1000


async def test_interleaved_connections_each_stay_in_order(layer, registry):
    handled = {}

    def consumer(message):
        time.sleep(random.random() / 1000)
        handled.setdefault(message["reply_channel"], []).append(int(message["text"]))

    worker = make_worker(layer, [route("websocket.receive", consumer)], registry)
    names = [await connection(layer) for _ in range(3)]
    for start in range(0, 200, 20):
        for name in names:
            await send_frames(layer, name, 20, start)
    async with running(worker):
        await eventually(lambda: sum(map(len, handled.values())) == 600, timeout=60)
    assert handled == {name: list(range(200)) for name in names}


async def test_different_connections_run_in_parallel(layer, registry):
    running_now, peak = [0], [0]
    lock = threading.Lock()

    def slow(message):
        with lock:
            running_now[0] += 1
            peak[0] = max(peak[0], running_now[0])
        time.sleep(0.3)
        with lock:
            running_now[0] -= 1

    worker = make_worker(layer, [route("websocket.receive", slow)], registry, concurrency=8)
    for _ in range(8):
        await send_frames(layer, await connection(layer), 1)
    started = time.monotonic()
    async with running(worker):
        await eventually(
            lambda: sample(registry, MESSAGES, channel="websocket.receive", outcome="ok") == 8
        )
    assert time.monotonic() - started < 1.5
    assert peak[0] == 8


async def test_async_consumers_run_on_the_loop_in_parallel(layer, registry):
    done = []

    async def consumer(message):
        await asyncio.sleep(0.3)
        await Group("async-done").aadd(message.reply_channel)
        await message.reply_channel.asend({"text": "done"})
        done.append(message["reply_channel"])

    worker = make_worker(layer, [route("websocket.receive", consumer)], registry)
    names = [await connection(layer) for _ in range(10)]
    for name in names:
        await send_frames(layer, name, 1)
    started = time.monotonic()
    async with running(worker):
        await eventually(lambda: len(done) == 10)
    assert time.monotonic() - started < 1.5
    assert await reply(layer, names[3]) == {"text": "done"}


async def test_sync_consumers_reach_the_layer_from_their_threads(layer, registry):
    def consumer(message):
        Group("joined").add(message.reply_channel)  # immediate, through the worker's loop
        message.reply_channel.send({"accept": True})  # held until the consumer returns

    worker = make_worker(layer, [route("websocket.connect", consumer)], registry)
    name = await connection(layer)
    await layer.send("websocket.connect", {"reply_channel": name, "path": "/"})
    async with running(worker):
        assert await reply(layer, name) == {"accept": True}
        await layer.group_send("joined", {"text": "member"})
        assert await reply(layer, name) == {"text": "member"}


async def test_a_failing_consumer_is_logged_counted_and_the_worker_carries_on(
    layer, registry, caplog
):
    handled = []

    def consumer(message):
        if message["text"] == "boom":
            raise ValueError("the consumer blew up")
        handled.append(message["text"])

    worker = make_worker(layer, [route("websocket.receive", consumer, path=r"^/")], registry)
    name = await connection(layer)
    for text in ("boom", "fine", "boom", "also fine"):
        await layer.send("websocket.receive", {"reply_channel": name, "path": "/", "text": text})
    with caplog.at_level(logging.ERROR, logger="channelworks_worker.runtime"):
        async with running(worker):
            await eventually(lambda: len(handled) == 2)
            await eventually(
                lambda: (
                    sample(registry, MESSAGES, channel="websocket.receive", outcome="error") == 2
                )
            )
    assert handled == ["fine", "also fine"]
    assert sample(registry, MESSAGES, channel="websocket.receive", outcome="ok") == 2
    failures = [r for r in caplog.records if "consumer failed" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].channel == "websocket.receive"
    assert "path=^/" in failures[0].route and "consumer" in failures[0].route
    assert failures[0].exc_info[0] is ValueError


async def test_unrouted_messages_are_counted_logged_once_and_dropped(layer, registry, caplog):
    handled = []
    routes = [
        route("chat.command", lambda message: handled.append(message["command"]), command=r"^join$")
    ]
    worker = make_worker(layer, routes, registry)
    await layer.send("chat.command", {"command": "leave"})
    await layer.send("chat.command", {"command": "join"})
    with caplog.at_level(logging.WARNING, logger="channelworks_worker.runtime"):
        async with running(worker):
            await eventually(lambda: handled == ["join"])
            await eventually(
                lambda: sample(registry, MESSAGES, channel="chat.command", outcome="unrouted") == 1
            )
    assert [r.getMessage() for r in caplog.records if "no route" in r.getMessage()] == [
        "no route for a message on chat.command (fields: command); dropped"
    ]
    assert (await layer.queue_stats()).total_depth == 0


async def test_http_requests_are_answered_by_django_views(layer, registry):
    router_routes = [route("http.request", "django")]
    worker = make_worker(layer, router_routes, registry, concurrency=4)
    name = await connection(layer)
    await layer.send(
        "http.request",
        {
            "reply_channel": name,
            "http_version": "1.1",
            "method": "GET",
            "path": "/stream/",
            "query_string": b"",
            "headers": [[b"host", b"testserver"]],
            "body": b"",
        },
    )
    async with running(worker):
        replies = []
        while not replies or replies[-1].get("more_content"):
            replies.append(await reply(layer, name))
    assert replies[0]["status"] == 200
    assert b"".join(r["content"] for r in replies) == b"part0;part1;part2;part3;part4;"
    assert (
        sample(
            registry, "channelworks_worker_message_duration_seconds_count", channel="http.request"
        )
        == 1
    )


async def test_stop_finishes_in_flight_work_and_takes_nothing_new(layer, registry):
    gate, started, finished = threading.Event(), threading.Event(), []

    def consumer(message):
        started.set()
        gate.wait(10)
        finished.append(message["text"])

    worker = make_worker(layer, [route("websocket.receive", consumer)], registry, concurrency=1)
    await send_frames(layer, await connection(layer), 1)
    await send_frames(layer, await connection(layer), 1, start=1)
    task = asyncio.create_task(worker.run())
    await eventually(started.is_set)
    worker.stop()
    assert not worker.ready
    await asyncio.sleep(0.3)
    assert not task.done()  # still finishing the message in flight
    gate.set()
    await asyncio.wait_for(task, 10)
    assert len(finished) == 1  # which of the two connections came first is up to the layer
    assert sample(registry, MESSAGES, channel="websocket.receive", outcome="ok") == 1
    # The message it did not take is still there for the next worker.
    successor = make_worker(layer, [route("websocket.receive", consumer)], CollectorRegistry())
    async with running(successor):
        await eventually(lambda: sorted(finished) == ["0", "1"])


async def test_drain_gives_up_after_the_drain_time(layer, registry, caplog):
    gate, started = threading.Event(), threading.Event()

    def stuck(message):
        started.set()
        gate.wait(10)

    worker = make_worker(layer, [route("websocket.receive", stuck)], registry, drain_seconds=0.2)
    await send_frames(layer, await connection(layer), 1)
    task = asyncio.create_task(worker.run())
    await eventually(started.is_set)
    began = time.monotonic()
    worker.stop()
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(task, 5)
    gate.set()
    assert time.monotonic() - began < 0.2 + runtime.RECEIVER_STOP_SECONDS + 1
    assert sample(registry, MESSAGES, channel="websocket.receive", outcome="ok") == 0
    assert any("left unacknowledged" in r.getMessage() for r in caplog.records)


def test_channel_selection():
    assert runtime.select_channels({"a", "b", "c"}, exclude=["b"]) == ["a", "c"]
    assert runtime.select_channels({"a", "b"}, only=["b"]) == ["b"]
    with pytest.raises(exceptions.ConfigurationError, match="no channels"):
        runtime.select_channels({"a"}, exclude=["a"])
