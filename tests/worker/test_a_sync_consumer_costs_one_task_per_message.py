"""A message for a sync consumer costs the worker one asyncio task (issue 15: the echo path's CPU).

The time limit of a sync consumer is kept in the message's own task (its thread is abandoned on
expiry, see test_a_hung_consumer_is_given_up_and_reported.py), not with a second task and
``asyncio.wait`` per message, as it was.
"""

import asyncio

from channelworks import asgi, route
from channelworks.layers import InMemoryChannelLayer

from .support import running
from .test_worker_runtime import connection, make_worker, reply

# The worker's own code (the layer's tasks, e.g. this test's receives, are not counted).
OURS = ("channelworks_worker/runtime.py", "channelworks/dispatch.py")
CONNECTIONS = 50
ROUNDS = 10


async def test_echoes_through_a_sync_consumer_start_one_worker_task_each(registry) -> None:
    layer = InMemoryChannelLayer(capacity=5000)
    saved = asgi.channel_layers.set("default", layer)

    def echo(message):
        message.reply_channel.send({"text": message["text"]})

    worker = make_worker(layer, [route("websocket.receive", echo)], registry)
    loop = asyncio.get_running_loop()
    started: list[str] = []
    try:
        async with running(worker):
            sockets = [await connection(layer) for _ in range(CONNECTIONS)]

            def counting(loop, coro, **kwargs):
                code = getattr(coro, "cr_code", None)
                if code is not None and code.co_filename.endswith(OURS):
                    started.append(code.co_qualname)
                return asyncio.Task(coro, loop=loop, **kwargs)

            loop.set_task_factory(counting)
            try:
                for number in range(1, ROUNDS + 1):
                    for socket in sockets:
                        message = {"reply_channel": socket, "path": "/", "order": number}
                        await layer.send("websocket.receive", {**message, "text": str(number)})
                    answers = [await reply(layer, socket) for socket in sockets]
                    assert answers == [{"text": str(number)}] * CONNECTIONS
            finally:
                loop.set_task_factory(None)
    finally:
        asgi.channel_layers.set("default", saved)
    handled = CONNECTIONS * ROUNDS
    # One per message (its handling); two per message before (the consumer's own task too).
    assert len(started) == handled, f"{len(started)} tasks for {handled} messages: {set(started)}"
