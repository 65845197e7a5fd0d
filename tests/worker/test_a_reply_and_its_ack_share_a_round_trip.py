"""A message's reply and its ack reach Redis in one write, the reply first.

A sync consumer's single ``reply_channel.send`` is held until it returns; the worker then queues
the message's ack (XDEL of its entry, HDEL of its hand-out record) behind that reply in the same
pipeline, instead of sending it in a round trip of its own once the reply is answered (issue 15:
the worker's CPU per echo message). The reply stays first, so a worker that dies between them
redelivers rather than loses. What Redis counts as reads (``total_reads_processed``: one per
pipeline that arrives whole) shows the round trip saved; ``MONITOR`` shows the order.
"""

import asyncio
import secrets

from channelworks.layers import RedisChannelLayer
from tests.layer import redis_probe

from .support import running_echo_worker
from .test_worker_runtime import connection

ROUNDS = 60


def reads(client) -> int:
    return int(client.info("stats")["total_reads_processed"])


async def test_a_single_reply_and_the_ack_go_out_together_reply_first(redis_url, registry):
    prefix = f"wtrip{secrets.token_hex(3)}"
    worker_layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    interface = RedisChannelLayer(hosts=[redis_url], prefix=prefix)

    server = redis_probe.client_for(redis_url)
    try:
        async with running_echo_worker(worker_layer, registry):
            socket = await connection(interface)

            async def echo_once(number: int) -> dict:
                await interface.send(
                    "websocket.receive",
                    {"reply_channel": socket, "path": "/", "order": number, "text": str(number)},
                )
                return await asyncio.wait_for(interface.receive(socket), 10)

            for number in range(5):  # the shards taken, the scripts loaded
                assert await echo_once(number) == {"text": str(number)}
            before = reads(server)
            for number in range(5, 5 + ROUNDS):
                assert await echo_once(number) == {"text": str(number)}
            per_message = (reads(server) - before) / ROUNDS

            # The order of one more message's commands, as Redis ran them.
            with server.monitor() as monitor:
                assert await echo_once(99) == {"text": "99"}
                await asyncio.sleep(0.2)
                ran = []
                while len(ran) < 200:
                    command = await asyncio.to_thread(monitor.next_command)
                    ran.append(command["command"])
                    if command["command"].startswith("HDEL"):
                        break
    finally:
        await worker_layer.close()
        await interface.close()
    # One message, one at a time: the interface's send and its next inbox read, the worker's
    # hand-out record, its reply with the ack, its next stream read: 5 (6 when the ack took a
    # round trip of its own, as before).
    assert per_message < 5.5, f"{per_message:.2f} reads of pipelines per echoed message"
    # The reply (the script that pushes to the interface's inbox) before the entry's delete.
    push = next(i for i, command in enumerate(ran) if "}:inbox" in command)
    delete = next(i for i, command in enumerate(ran) if command.startswith("XDEL"))
    assert push < delete, ran
