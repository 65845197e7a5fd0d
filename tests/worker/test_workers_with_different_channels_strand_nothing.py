"""Workers of one application that take different channels (``CHANNELWORKS_WORKER_CHANNELS``,
what a worker pool sets) each get every message of their own channels: none is stranded in a
shard that a worker of the other channel set holds.

Two real ``channelworks-worker`` processes on a real redis-server and on a real six-node Redis
Cluster, one on ``chan.a``, one on ``chan.b``; 64 messages of 64 connections on each channel (so
they spread over every shard).
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.dataplane import processes
from tests.support.eventually import eventually_async
from tests.worker.misbehaving import misbehaving, pid_of

ROUTING = "tests.worker.pools_app.routing.channel_routing"
MESSAGES = 64
DELIVERY_SECONDS = 30.0  # far above the ~1 s it takes; the machine is shared


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
async def test_two_workers_on_different_channels_each_get_all_their_messages(
    mode, request, tmp_path
):
    url = request.getfixturevalue("redis_url" if mode == "standalone" else "cluster_url")
    layer_env = {"CHANNELWORKS_REDIS_MODE": mode, "CHANNELWORKS_REDIS_URL": url}
    async with misbehaving(url, tmp_path) as app:
        on_a = await app.start_worker(
            wait=False,
            CHANNELWORKS_ROUTING=ROUTING,
            CHANNELWORKS_WORKER_CHANNELS="chan.a",
            **layer_env,
        )
        on_b = await app.start_worker(
            wait=False,
            CHANNELWORKS_ROUTING=ROUTING,
            CHANNELWORKS_WORKER_CHANNELS="chan.b",
            **layer_env,
        )
        for worker in app.workers:
            await eventually_async(worker.ready, timeout=processes.READY_SECONDS)

        for n in range(MESSAGES):
            for channel in ("chan.a", "chan.b"):
                message = {"reply_channel": f"specific.test!{n}", "n": n}
                await app.layer.send(channel, message)

        def all_received() -> bool:
            return len(app.lines("received")) >= 2 * MESSAGES

        try:
            await eventually_async(all_received, timeout=DELIVERY_SECONDS, interval=0.2)
        finally:
            lines = app.lines("received")
            got = Counter(line.split()[1] for line in lines)
            print(f"delivered: chan.a {got['chan.a']}/64, chan.b {got['chan.b']}/64")
        by_channel: dict[str, set[int]] = {"chan.a": set(), "chan.b": set()}
        for line in lines:
            _, channel, n = line.split()
            assert pid_of(line) == (on_a if channel == "chan.a" else on_b).pid, line
            by_channel[channel].add(int(n))
        assert by_channel == {"chan.a": set(range(MESSAGES)), "chan.b": set(range(MESSAGES))}
        assert len(lines) == 2 * MESSAGES  # none twice
        queued: list[int] = []

        async def nothing_queued() -> bool:
            queued.append((await app.layer.queue_stats()).total_depth)
            return queued[-1] == 0

        await eventually_async(nothing_queued, timeout=10)  # all acked, nothing left behind
