"""HTTP is at most once: a POST whose worker is killed while running it is not run again by
another worker (the client gets a 502); a GET is run again (idempotent, it may be retried).

Two real workers and a real interface on a real redis-server; the view blocks on a file so the
kill lands while it runs; ``executions`` counts how many times the view ran.
"""

import asyncio
import os
import signal

import httpx

from tests.dataplane import processes
from tests.support.eventually import eventually_async
from tests.worker.misbehaving import misbehaving, pid_of

REDELIVERY_SECONDS = 30.0  # lease (5 s) + a renewal period, on a busy machine


async def _kill_the_worker_running_it(app, client_call):
    """Start the request, wait for the view to run, SIGKILL the worker running it, release."""
    answer = asyncio.create_task(asyncio.to_thread(client_call))
    runs = await eventually_async(lambda: app.lines("executions"), timeout=30)
    killed = pid_of(runs[0])
    os.kill(killed, signal.SIGKILL)
    (app.root / "release").touch()
    response = await asyncio.wait_for(answer, REDELIVERY_SECONDS + 30)
    return killed, response


async def test_a_post_whose_worker_is_killed_is_answered_502_and_never_run_again(
    redis_url, tmp_path
):
    async with misbehaving(redis_url, tmp_path) as app:
        await app.start_worker(wait=False)
        await app.start_worker(wait=False)
        interface = await app.start_interface()
        for worker in app.workers:
            await eventually_async(worker.ready, timeout=processes.READY_SECONDS)

        def post():
            return httpx.post(
                f"{interface.base_url}/admin/post/add/", data={"title": "x"}, timeout=90
            )

        killed, response = await _kill_the_worker_running_it(app, post)

        assert response.status_code == 502, response.text
        assert "not run again" in response.text
        assert len(app.lines("executions")) == 1, app.lines("executions")
        survivor = next(w for w in app.workers if w.pid != killed)
        assert (
            processes.metric(survivor.metrics(), "channelworks_worker_http_not_retried_total") == 1
        )
        assert "answering 502 instead of running it twice" in survivor.log()


async def test_a_get_whose_worker_is_killed_is_run_again_by_another_worker(redis_url, tmp_path):
    async with misbehaving(redis_url, tmp_path) as app:
        await app.start_worker(wait=False)
        await app.start_worker(wait=False)
        interface = await app.start_interface()
        for worker in app.workers:
            await eventually_async(worker.ready, timeout=processes.READY_SECONDS)

        def get():
            return httpx.get(f"{interface.base_url}/report/", timeout=90)

        killed, response = await _kill_the_worker_running_it(app, get)

        assert response.status_code == 200, response.text
        runs = app.lines("executions")
        assert len(runs) == 2, runs
        assert pid_of(runs[1]) != killed
