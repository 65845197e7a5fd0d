"""A group send costs Redis work per receiving process, not per member; fan-out is local."""

from __future__ import annotations

import asyncio

from channelworks.layers import RedisChannelLayer

from . import redis_probe


async def test_group_send_to_1000_members_in_4_processes_is_a_handful_of_commands(
    redis_url: str,
) -> None:
    processes = [RedisChannelLayer(hosts=[redis_url], prefix="fan") for _ in range(4)]
    try:
        members = [[await p.new_channel() for _ in range(250)] for p in processes]
        for process, channels in zip(processes, members, strict=True):
            await asyncio.gather(*(process.group_add("everyone", c) for c in channels))
        # start every member's receiver (the inbox readers) before measuring
        receivers = [
            asyncio.create_task(process.receive(channel))
            for process, channels in zip(processes, members, strict=True)
            for channel in channels
        ]
        await asyncio.sleep(0.3)
        server = redis_probe.client_for(redis_url)
        before = redis_probe.commands_processed(server)
        await processes[0].group_send("everyone", {"text": "to all"})
        received = await asyncio.wait_for(asyncio.gather(*receivers), 10)
        spent = redis_probe.commands_processed(server) - before
    finally:
        for process in processes:
            await process.close()
    assert len(received) == 1000 and all(m == {"text": "to all"} for m in received)
    # one script (the group read and 4 inbox pushes inside it) + 4 inbox reads (+ a few
    # blocked-read wakeups); one command per member would be > 1000.
    assert spent < 40, spent
