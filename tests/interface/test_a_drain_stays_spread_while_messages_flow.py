"""A draining interface closes its sockets spread over the drain window even while messages
still reach them: a chat room tells the others when someone leaves, and each such message used
to close its socket at once (1012), so a pod removed by scale-in closed all its sockets in one
burst after the first (seen on the real node: 5 sockets within 0.2 s instead of over 10 s)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker, echo

SOCKETS = 4


async def _closed_at(ws: Any) -> tuple[float, int | None, list[str]]:
    """When the server closed ``ws``, with which code, and the frames it got meanwhile."""
    heard: list[str] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            heard.append(str(await ws.recv()))
    code = None if closed.value.rcvd is None else closed.value.rcvd.code
    return time.monotonic(), code, heard


async def test_messages_during_the_drain_do_not_close_the_sockets_at_once(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface(
        CHANNELWORKS_INTERFACE_DRAIN_DELAY="1",
        CHANNELWORKS_INTERFACE_DRAIN_WINDOW="4",
        CHANNELWORKS_INTERFACE_GRACE_PERIOD="12",
    )
    open_sockets: dict[str, dict[str, Any]] = {}

    async def room(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        """Accepts; when one socket leaves, tells every other one (a chat room's 'left')."""
        if channel == "websocket.connect":
            open_sockets[message["path"]] = message
        if channel == "websocket.disconnect":
            open_sockets.pop(message["path"], None)
            for other in list(open_sockets.values()):
                await worker.reply(other, {"text": f"{message['path']} left"})
        else:
            await echo(worker, channel, message)

    async with FakeWorker(worker_layer, room), contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(connect(interface.ws_url(f"/room/{n}")))
            for n in range(SOCKETS)
        ]
        for ws in sockets:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        closes = [asyncio.ensure_future(_closed_at(ws)) for ws in sockets]
        interface.terminate()
        results = await asyncio.wait_for(asyncio.gather(*closes), timeout=12)

    assert [code for _, code, _ in results] == [1012] * SOCKETS
    times = sorted(at for at, _, _ in results)
    # Spread over the 4 s window (one close a second), not closed when a message arrived.
    assert times[-1] - times[0] >= 2.0, [round(t - times[0], 2) for t in times]
    heard = [frame for _, _, frames in results for frame in frames]
    assert any(frame.endswith(" left") for frame in heard), heard  # messages did flow meanwhile
