"""A message whose consumer raises SystemExit or KeyboardInterrupt, or kills its worker outright,
cannot take the workers down one after the other: the exceptions are contained, and a message
handed out ``CHANNELWORKS_WORKER_MAX_DELIVERIES`` times goes to the dead-letter channel while the
rest of its connection and shard move on. Real worker processes on a real redis-server."""

import asyncio

from tests.dataplane import processes
from tests.support.eventually import eventually_async
from tests.worker.misbehaving import misbehaving, pid_of

REDELIVERY_SECONDS = 30.0


async def test_system_exit_and_keyboard_interrupt_in_a_consumer_do_not_end_the_worker(
    redis_url, tmp_path
):
    async with misbehaving(redis_url, tmp_path) as app:
        worker = await app.start_worker()
        socket = await app.layer.new_channel()
        await app.socket_send(socket, "exit", order=1)
        await app.socket_send(socket, "interrupt", order=2)
        await app.socket_send(socket, "hello", order=3)

        assert await app.reply(socket, timeout=30) == {"text": "echo:hello"}
        assert worker.alive
        assert worker.probe("/readyz") == 200
        errors = processes.metric(
            worker.metrics(),
            "channelworks_worker_messages_total",
            {"channel": "websocket.receive", "outcome": "error"},
        )
        assert errors == 2
        log = worker.log()
        assert "consumer failed on websocket.receive (route" in log
        assert "SystemExit: 2" in log
        assert "KeyboardInterrupt" in log


async def test_a_message_that_kills_every_worker_is_dead_lettered_and_its_shard_moves_on(
    redis_url, tmp_path
):
    async with misbehaving(redis_url, tmp_path) as app:
        limits = {"CHANNELWORKS_WORKER_MAX_DELIVERIES": "2"}
        first = await app.start_worker(**limits)
        socket = await app.layer.new_channel()
        await app.socket_send(socket, "kill", order=1)
        await app.socket_send(socket, "after the poison", order=2)

        # Each worker that takes it dies, as a Deployment would restart them, one at a time.
        processes.wait_for_exit(first, 30)
        second = await app.start_worker(wait=False, **limits)
        await eventually_async(lambda: not second.alive, timeout=REDELIVERY_SECONDS)
        third = await app.start_worker(wait=False, **limits)

        close = await app.reply(socket, timeout=REDELIVERY_SECONDS)
        assert close == {"close": True}
        assert await app.reply(socket, timeout=30) == {"text": "echo:after the poison"}
        assert third.alive

        dead = await asyncio.wait_for(app.layer.receive("channelworks.dead_letters"), 10)
        assert dead["channel"] == "websocket.receive"
        assert dead["message"]["text"] == "kill"
        assert dead["reason"] == "max_deliveries"
        assert dead["deliveries"] == 3
        dead_letters = processes.metric(
            third.metrics(),
            "channelworks_worker_dead_letters_total",
            {"channel": "websocket.receive", "reason": "max_deliveries"},
        )
        assert dead_letters == 1
        assert "giving up on a message on websocket.receive" in third.log()
        killers = [pid_of(line) for line in app.lines("received") if line.endswith(" kill")]
        assert killers == [first.pid, second.pid]
