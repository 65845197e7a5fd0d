"""The floor under figure 3 (group send): the least a layer could do, measured the same way.

``FloorLayer`` has the four calls figure 3 uses and does nothing but what any group send to
members held by several processes must do: one Redis list entry per process, read by one
blocking pop, and every waiting ``receive()`` woken with its own decoded copy. It skips what a
real layer cannot: members are known only to the process that added them (so ``group_add`` must
be called where the channel lives), no expiry, capacity, ordering or error handling. Its time is
the part of figure 3 that the machine (event loop wake-ups on 2 shared cores), not the layer,
decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import msgpack
import redis.asyncio as aioredis


class FloorLayer:
    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.Redis.from_url(url)
        self._prefix = prefix
        self._process = secrets.token_hex(6)
        self._members: dict[str, list[str]] = {}
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def new_channel(self) -> str:
        return f"floor.{self._process}!{secrets.token_hex(4)}"

    async def group_add(self, group: str, channel: str) -> None:
        members = self._members.setdefault(group, [])
        members.append(channel)
        if len(members) == 1:  # the process joins once
            await self._redis.sadd(f"{self._prefix}:{group}", self._process)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        entry = msgpack.packb([group, msgpack.packb(message)])
        processes = await self._redis.smembers(f"{self._prefix}:{group}")
        async with self._redis.pipeline(transaction=False) as pipe:
            for process in processes:
                pipe.rpush(f"{self._prefix}:inbox:{process.decode()}", entry)
            await pipe.execute()

    async def receive(self, channel: str) -> Any:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        waiter = self._waiting[channel] = asyncio.get_running_loop().create_future()
        return await waiter

    async def _read(self) -> None:
        inbox = f"{self._prefix}:inbox:{self._process}"
        while True:
            popped = await self._redis.blpop([inbox], timeout=0)
            group, payload = msgpack.unpackb(popped[1])
            for channel in self._members.get(group, ()):
                waiter = self._waiting.pop(channel, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(msgpack.unpackb(payload))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._redis.aclose()
