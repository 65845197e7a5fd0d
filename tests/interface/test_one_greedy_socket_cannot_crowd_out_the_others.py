"""Per-socket fairness: one client bursting thousands of frames cannot fill the channel stream it
shares with other sockets (before, every socket of its stream was closed 1013 as the stream
filled). Its frames beyond ``MESSAGE_BURST`` and ``MESSAGE_RATE`` are held back (the interface
stops reading it) and, as it keeps pushing, it is closed 1008; the sockets sharing its stream
carry on. Real WebSocket clients, a real interface process on a real Redis, default limits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker
from tests.support.processes import metric

RECEIVE = "websocket.receive"
SHARING = 5  # quiet sockets whose frames go to the greedy socket's stream
FLOOD = 3000


async def _open(url: str, worker: FakeWorker, path: str) -> tuple[ClientConnection, str]:
    ws = await connect(url)
    (connected,) = await worker.wait_for("websocket.connect", path=path)
    return ws, connected["reply_channel"]


async def _chat(ws: ClientConnection, until: asyncio.Event) -> tuple[int, list[str]]:
    """Send a frame every 250 ms until told to stop; then how many were sent, and the echoes."""
    sent = 0
    with contextlib.suppress(ConnectionClosed):  # the test then finds the socket closed
        while not until.is_set():
            await ws.send(f"hello {sent}")
            sent += 1
            await asyncio.sleep(0.25)
    echoes = []
    with contextlib.suppress(TimeoutError, ConnectionClosed):
        async with asyncio.timeout(20):
            while len(echoes) < sent:
                echoes.append(str(await ws.recv()))
    return sent, echoes


async def _flood(ws: ClientConnection) -> int | None:
    """Send FLOOD frames as fast as the connection takes them; the close code, if closed."""
    with contextlib.suppress(ConnectionClosed):
        for n in range(FLOOD):
            await ws.send(f"flood {n}")
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(15):
            while True:
                await ws.recv()
    return None if ws.protocol.close_rcvd is None else ws.protocol.close_rcvd.code


async def test_a_burst_from_one_socket_closes_only_that_socket(
    start_interface: StartInterface, worker_layer: RedisChannelLayer, redis_url: str
) -> None:
    interface = start_interface()
    layout = worker_layer.layout
    async with FakeWorker(worker_layer) as opener:
        greedy, greedy_channel = await _open(interface.ws_url("/greedy/"), opener, "/greedy/")
        stream = layout.shard_for(RECEIVE, greedy_channel)
        sharing: list[ClientConnection] = []
        others: list[ClientConnection] = []
        for n in range(300):  # open quiet sockets until enough share the greedy one's stream
            ws, channel = await _open(interface.ws_url(f"/q/{n}"), opener, f"/q/{n}")
            (sharing if layout.shard_for(RECEIVE, channel) == stream else others).append(ws)
            if len(sharing) == SHARING:
                break
    assert len(sharing) == SHARING
    await worker_layer.close()  # no worker reads for a second (a busy moment) while it floods
    stop = asyncio.Event()
    chats = [asyncio.ensure_future(_chat(ws, stop)) for ws in sharing]
    started = time.monotonic()
    flood = asyncio.ensure_future(_flood(greedy))
    await asyncio.sleep(1.0)
    layer = RedisChannelLayer(hosts=[redis_url], prefix=worker_layer.config.prefix)
    try:
        async with FakeWorker(layer) as worker:
            greedy_code = await flood
            flood_seconds = time.monotonic() - started
            await asyncio.sleep(1.0)
            stop.set()
            chatted = await asyncio.gather(*chats)
            closed = [
                ws.protocol.close_rcvd for ws in [*sharing, *others] if ws.protocol.close_rcvd
            ]
            for ws in [*sharing, *others]:
                await ws.close()
    finally:
        await layer.close()
    forwarded = len(worker.messages(RECEIVE, "/greedy/"))
    print(
        f"greedy socket: closed {greedy_code} after {flood_seconds:.1f}s, {forwarded} of {FLOOD} "
        f"frames forwarded; quiet sockets on its stream sent/got back "
        f"{[(sent, len(echoes)) for sent, echoes in chatted]}"
    )
    assert closed == []  # none of the others was closed
    assert greedy_code == 1008
    assert forwarded <= 20 + 50 * flood_seconds + 20  # burst + rate x time, and slack
    for sent, echoes in chatted:
        assert echoes == [f"hello {n}" for n in range(sent)]
    text = interface.metrics()
    labels: dict[str, Any] = {"reason": "rate_limited"}
    assert metric(text, "channelworks_interface_refusals_total", labels) == 1
    assert metric(text, "channelworks_interface_throttled_total") >= 1
