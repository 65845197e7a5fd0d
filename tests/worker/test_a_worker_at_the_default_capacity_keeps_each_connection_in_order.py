"""The worker runtime on a layer with the default ``capacity`` (100), not the raised one the other
worker tests use (conftest.py): a producer sends faster than the worker handles, meets
``ChannelFull`` and sends again a moment later (as a client told 1013 would). Each connection's
messages are still handled once, one at a time, in the order sent, and the refusals are counted.
"""

import asyncio
import random
import secrets
import threading
import time

import pytest

from channelworks import asgi, exceptions, route, routing
from channelworks.layers import InMemoryChannelLayer, RedisChannelLayer
from channelworks_worker import metrics, runtime

from .support import eventually, running

CONNECTIONS = 3
MESSAGES = 300  # per connection: three times the default capacity


@pytest.fixture(params=["memory", "redis"])
async def default_layer(request):
    """A layer at its default capacity, installed as the process's default (as ``main`` does)."""
    if request.param == "memory":
        backend = InMemoryChannelLayer()
    else:
        url = request.getfixturevalue("redis_url")
        backend = RedisChannelLayer(hosts=[url], prefix=f"wdefault{secrets.token_hex(3)}")
    saved = asgi.channel_layers.set("default", backend)
    yield backend
    asgi.channel_layers.set("default", saved)
    await backend.close()


async def test_a_producer_refused_at_the_default_capacity_loses_and_reorders_nothing(
    default_layer, registry
):
    layer = default_layer
    handled = {}
    busy = set()
    overlaps = []
    lock = threading.Lock()

    def consumer(message):
        key = message["reply_channel"]
        with lock:
            if key in busy:
                overlaps.append(key)
            busy.add(key)
        time.sleep(random.uniform(0, 0.002))
        with lock:
            handled.setdefault(key, []).append(int(message["text"]))
            busy.discard(key)

    router = routing.Router([route("websocket.receive", consumer)])
    worker = runtime.Worker(layer, router, metrics.WorkerMetrics(registry), concurrency=4)
    names = [await layer.new_channel("test.") for _ in range(CONNECTIONS)]
    refused = 0
    async with running(worker):
        for number in range(MESSAGES):
            for name in names:
                message = {"reply_channel": name, "path": "/", "order": number, "text": str(number)}
                while True:
                    try:
                        await layer.send("websocket.receive", message)
                        break
                    except exceptions.ChannelFull:
                        refused += 1
                        await asyncio.sleep(0.01)
        await eventually(lambda: sum(map(len, handled.values())) == CONNECTIONS * MESSAGES, 60)
    print(f"{type(layer).__name__}: {refused} sends refused at the default capacity and repeated")
    assert overlaps == []
    assert handled == {name: list(range(MESSAGES)) for name in names}
