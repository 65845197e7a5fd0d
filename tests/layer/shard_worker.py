"""A worker process for the shard-change tests: takes work, records each hand-out, acks it.

    python shard_worker.py <redis url> <prefix> <out file>

Each hand-out is one line of ``<connection> <order> <time it was handed out> <pid>`` in the out
file; ``<out>.shards`` holds the shard count this member last read and the shards it holds (JSON),
rewritten as they change. SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from channelworks.layers import RedisChannelLayer

CHANNEL = "test.work"


async def main(url: str, prefix: str, out: Path) -> None:
    # A long lease: on a busy shared machine a worker may stall for seconds, and a lease lost to
    # a stall hands messages out again (the documented at-least-once path), not what is tested.
    layer = RedisChannelLayer(hosts=[url], prefix=prefix, capacity=100_000, lease_seconds=15)
    receiver = layer.work_receiver([CHANNEL])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    status = out.with_suffix(".shards")
    shown = ""
    with out.open("a") as log:
        while not stop.is_set():
            delivery = await receiver.get(timeout=0.1)
            if delivery is not None:
                message = delivery.message
                log.write(f"{message['reply_channel']} {message['order']} {time.time()} ")
                log.write(f"{os.getpid()}\n")
                log.flush()
                await delivery.ack()
            now = json.dumps(
                {
                    "count": receiver.shard_count,  # type: ignore[attr-defined]
                    "shards": receiver.owned_shards,  # type: ignore[attr-defined]
                }
            )
            if now != shown:
                staged = status.with_suffix(".staged")
                staged.write_text(now)
                staged.replace(status)
                shown = now
    await receiver.stop(timeout=5)
    await layer.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
