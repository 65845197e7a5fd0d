"""A process that sends itself a message through the layer every 50 ms and prints each round
trip (``ok <n> <seconds>``) or failure (``error <what>``), until it is killed."""

from __future__ import annotations

import asyncio
import sys
import time

from channelworks.layers import RedisChannelLayer


async def main(url: str, prefix: str) -> None:
    layer = RedisChannelLayer(hosts=[url], prefix=prefix)
    channel = await layer.new_channel()
    number = 0
    while True:
        number += 1
        started = time.monotonic()
        try:
            await layer.send(channel, {"n": number})
            async with asyncio.timeout(30):
                while (await layer.receive(channel))["n"] != number:
                    pass
        except Exception as error:  # printed for the test to read; the loop goes on
            print("error", type(error).__name__, error, flush=True)
            continue
        print("ok", number, f"{time.monotonic() - started:.3f}", flush=True)
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
