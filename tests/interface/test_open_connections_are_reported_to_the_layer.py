"""The interface reports its open WebSockets into the channel layer every few seconds, under its
host (pod) name, and 0 once it drains: what the operator's interface autoscaler adds up
(``load_reports``)."""

from __future__ import annotations

import contextlib
import socket

from websockets.asyncio.client import connect

from channelworks.layers import RedisChannelLayer
from channelworks_interface.load_report import EVERY_SECONDS
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker
from tests.support.eventually import eventually_async


async def test_open_websockets_are_reported_under_the_pod_name(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface(CHANNELWORKS_INTERFACE_DRAIN_DELAY="3")
    member = socket.gethostname()

    async def reported(count: int) -> bool:
        return await worker_layer.load_reports() == {member: count}

    async with FakeWorker(worker_layer), contextlib.AsyncExitStack() as stack:
        await eventually_async(lambda: reported(0), timeout=EVERY_SECONDS + 5)
        sockets = [
            await stack.enter_async_context(connect(interface.ws_url(f"/s/{n}"))) for n in range(3)
        ]
        for ws in sockets:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        await eventually_async(lambda: reported(3), timeout=EVERY_SECONDS + 5)
        await sockets[0].close()
        await sockets[1].close()
        await eventually_async(lambda: reported(1), timeout=EVERY_SECONDS + 5)
        # Draining: 0 at once, while the last socket is still open (it is about to reconnect to
        # a pod that counts it; counting it here too would ask for pods the app does not need).
        interface.terminate()
        await eventually_async(lambda: reported(0), timeout=2)
        assert interface.probe("/readyz") == 503  # still draining: the 0 came before the exit
