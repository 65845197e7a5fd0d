"""What a worker writes to Redis per message: its acks and hand-out records share commands.

Every message a worker handles is recorded as handed out (for the next owner, should the worker
die) and deleted once acked. Those are one command each per message only when the worker is
idle; under load, the records and deletes of one pipeline go out as one command per stream or
shard (issue 15: the echo path's CPU, in the worker and in Redis).
"""

import asyncio
import secrets

from channelworks.layers import RedisChannelLayer
from tests.layer import redis_probe

from .support import running_echo_worker
from .test_worker_runtime import connection

CONNECTIONS = 200
ROUNDS = 5
BOOKKEEPING = ("xdel", "hdel", "hincrby", "hset")


def bookkeeping_calls(client) -> int:
    """XDEL, HDEL, HINCRBY and HSET calls the server has run."""
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in BOOKKEEPING)


async def test_under_load_a_message_costs_less_than_a_command_each_for_its_record_and_ack(
    redis_url, registry
):
    prefix = f"wcost{secrets.token_hex(3)}"
    worker_layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix, capacity=5000)
    interface = RedisChannelLayer(hosts=[redis_url], prefix=prefix, capacity=5000)

    server = redis_probe.client_for(redis_url)
    try:
        async with running_echo_worker(worker_layer, registry):
            sockets = [await connection(interface) for _ in range(CONNECTIONS)]

            async def echo_rounds(reply_channel):
                replies = []
                for number in range(1, ROUNDS + 1):
                    await interface.send(
                        "websocket.receive",
                        {"reply_channel": reply_channel, "path": "/", "order": number,
                         "text": str(number)},
                    )  # fmt: skip
                    replies.append(await asyncio.wait_for(interface.receive(reply_channel), 10))
                return replies

            # The first round takes the shards and warms up; the rest is measured.
            await asyncio.gather(*(echo_rounds(socket) for socket in sockets[:10]))
            before = bookkeeping_calls(server)
            answered = await asyncio.gather(*(echo_rounds(socket) for socket in sockets))
            spent = bookkeeping_calls(server) - before
    finally:
        await worker_layer.close()
        await interface.close()
    assert all(
        replies == [{"text": str(number)} for number in range(1, ROUNDS + 1)]
        for replies in answered
    )
    handled = CONNECTIONS * ROUNDS
    # One record and two deletes per message would be 3 per message (what the worker did before).
    assert spent / handled < 1.5, f"{spent} bookkeeping commands for {handled} messages"
