"""The interface's warnings about a socket name its reply channel only in part: a whole reply
channel name is an address anyone with the layer can send to, and logs travel far."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from channelworks.layers import RedisChannelLayer
from tests.interface.support import FakeWorker, InterfaceProcess
from tests.support.eventually import eventually


async def answer_nonsense(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
    if channel == "websocket.connect":
        await worker.reply(message, {"accept": True})
        await worker.reply(message, {"text": 42})  # not a reply the interface accepts


async def test_an_invalid_reply_is_logged_without_the_whole_reply_channel(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer, answer_nonsense) as worker:
        try:
            async with asyncio.timeout(30), connect(interface.ws_url("/nonsense/")) as ws:
                await ws.recv()
        except ConnectionClosed:
            pass  # closed for the invalid reply: what matters is what the log says about it
        (connected,) = await worker.wait_for("websocket.connect", path="/nonsense/")
    reply_channel = connected["reply_channel"]
    line = eventually(
        lambda: next(
            (line for line in interface.log().splitlines() if "invalid reply on" in line), None
        ),
        timeout=15,
    )
    assert reply_channel not in interface.log()
    assert reply_channel.split("!")[0] + "!..." + reply_channel[-4:] in line
