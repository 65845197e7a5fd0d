"""A worker process that takes one message and hangs (the test SIGKILLs it)."""

from __future__ import annotations

import asyncio
import sys

from channelworks.layers import RedisChannelLayer


async def main(url: str, prefix: str) -> None:
    layer = RedisChannelLayer(hosts=[url], prefix=prefix, lease_seconds=2)
    receiver = layer.work_receiver(["jobs"])
    delivery = await receiver.get(timeout=20)
    print("taken" if delivery else "nothing", delivery and delivery.message["n"], flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
