"""A consumer that never returns cannot wedge a worker: past the time limit its message is given
up (dead-lettered, its socket closed) and its connection moves on, its thread is reported with
its stack and replaced; a worker whose every thread is stuck stops itself (exit 3) so its shards
go to other workers; SIGTERM ends a worker within its drain time even with a consumer stuck.
Real worker processes on a real redis-server."""

import signal
import time

from tests.dataplane import processes
from tests.support.eventually import eventually_async
from tests.worker.misbehaving import misbehaving

LIMITS = {"CHANNELWORKS_WORKER_TIME_LIMIT_SECONDS": "1", "CHANNELWORKS_WORKER_CONCURRENCY": "2"}


async def test_a_message_past_the_time_limit_is_given_up_and_its_connection_moves_on(
    redis_url, tmp_path
):
    async with misbehaving(redis_url, tmp_path) as app:
        worker = await app.start_worker(**LIMITS)
        first = await app.layer.new_channel()
        await app.socket_send(first, "hang", order=1)
        await app.socket_send(first, "still there?", order=2)

        assert await app.reply(first, timeout=20) == {"close": True}
        assert await app.reply(first, timeout=20) == {"text": "echo:still there?"}
        page = worker.metrics()
        assert processes.metric(page, "channelworks_worker_stuck_threads") == 1
        given_up = {"channel": "websocket.receive", "reason": "time_limit"}
        assert processes.metric(page, "channelworks_worker_dead_letters_total", given_up) == 1
        assert worker.probe("/healthz") == 200  # one thread of two stuck, and replaced
        assert worker.probe("/readyz") == 200
        log = worker.log()
        assert "ran past the time limit of 1s" in log
        assert "abandoned while still running" in log
        assert "time.sleep(3600)" in log  # the stuck thread's stack names the culprit

        # A second stuck thread: the worker can take no more work, says so and stops itself.
        second = await app.layer.new_channel()
        await app.socket_send(second, "hang", order=1)
        assert await app.reply(second, timeout=20) == {"close": True}
        assert processes.wait_for_exit(worker, 15) == 3
        assert "all 2 consumer threads are stuck" in worker.log()


async def test_sigterm_ends_a_worker_within_its_drain_time_with_a_consumer_stuck(
    redis_url, tmp_path
):
    async with misbehaving(redis_url, tmp_path) as app:
        worker = await app.start_worker(CHANNELWORKS_DRAIN_SECONDS="2")
        socket = await app.layer.new_channel()
        await app.socket_send(socket, "hang", order=1)
        await eventually_async(lambda: app.lines("received"), timeout=20)

        worker.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        processes.wait_for_exit(worker, 10)
        assert time.monotonic() - sent < 2 + 5
        assert "left unacknowledged for redelivery" in worker.log()
