"""What an open, idle WebSocket holds in the interface: two asyncio tasks (the connection's
application instance, which reads the client's events, and its replies' loop), not three; and
Daphne's per-connection ``asyncio.Queue`` (about 3 KiB) is replaced by a queue that holds nothing
while nothing waits in it. Idle sockets are most of an interface's memory (issue 15: <= 16 KiB
each)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from websockets.asyncio.client import ClientConnection, connect

from channelworks_interface.event_queue import EventQueue
from tests.interface.conftest import InProcessInterface
from tests.interface.support import FakeWorker
from tests.support.eventually import eventually_async

SOCKETS = 20


async def _server_tasks() -> int:
    """The number of asyncio tasks on the interface's event loop (asked from that loop)."""
    from twisted.internet import reactor  # the interface's, installed by then

    loop = reactor._asyncioEventloop  # type: ignore[attr-defined]

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1  # not this one

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(count(), loop))


async def test_an_open_socket_costs_two_tasks(inprocess: InProcessInterface) -> None:
    async def no_socket_open() -> None:
        assert inprocess.sample("channelworks_interface_connections") == 0

    await eventually_async(no_socket_open)
    async with FakeWorker(inprocess.layer), contextlib.AsyncExitStack() as sockets:
        before = await _server_tasks()
        opened: list[ClientConnection] = []
        for n in range(SOCKETS):
            ws = await sockets.enter_async_context(connect(inprocess.ws_url(f"/tasks/{n}")))
            await ws.send("ping")  # a round trip: the socket is open and idle again after it
            assert await ws.recv() == "ping"
            opened.append(ws)

        async def all_open() -> None:
            assert inprocess.sample("channelworks_interface_connections") == SOCKETS

        await eventually_async(all_open)
        per_socket = (await _server_tasks() - before) / SOCKETS
    assert per_socket == 2, f"{per_socket} asyncio tasks per open socket"


async def test_the_event_queue_keeps_order_and_loses_nothing_to_a_cancelled_read() -> None:
    events = EventQueue()
    reader = asyncio.ensure_future(events.get())
    await asyncio.sleep(0)
    events.put_nowait({"type": "a"})
    reader.cancel()  # cancelled after the event arrived, before it ran: the event stays queued
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    events.put_nowait({"type": "b"})
    assert await events.get() == {"type": "a"}
    assert await events.get() == {"type": "b"}
    assert events.empty()
    waiting = asyncio.ensure_future(events.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one reader"):
        await events.get()
    events.put_nowait({"type": "c"})
    assert await waiting == {"type": "c"}
