"""``websocket.disconnect`` is never dropped: with the disconnect channel full, 100 sockets close,
and once a worker reads the channel again every one of their disconnects is there (the interface
queued them and sent them again as room came). Before, each one that met the full channel was
dropped, leaving its group memberships behind. A real interface process on a real Redis."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from websockets.asyncio.client import connect

from channelworks.exceptions import ChannelFull
from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.support.processes import metric

CAPACITY = 5
SOCKETS = 100


async def _accept_connects(layer: RedisChannelLayer, stop: asyncio.Event) -> list[str]:
    """Accept every socket that connects (reading only websocket.connect); their reply channels."""
    accepted = []
    while not stop.is_set():
        got = await layer.receive_many(["websocket.connect"], timeout=0.2)
        if got is not None:
            accepted.append(got[1]["reply_channel"])
            await layer.send(got[1]["reply_channel"], {"accept": True})
    return accepted


async def _fill(layer: RedisChannelLayer, channel: str) -> int:
    """Fill every shard of ``channel`` to its capacity; how many messages that took."""
    sent = 0
    for _ in range(40 * CAPACITY * layer.config.shards):
        try:
            await layer.send(channel, {"reply_channel": f"filler!{secrets.token_hex(4)}"})
            sent += 1
        except ChannelFull:
            pass
    assert sent == CAPACITY * layer.config.shards, sent
    return sent


async def test_every_disconnect_reaches_a_worker_after_the_channel_was_full(
    start_interface: StartInterface, redis_url: str, app_prefix: str
) -> None:
    interface = start_interface(CHANNELWORKS_LAYER_CAPACITY=str(CAPACITY))
    layer = RedisChannelLayer(hosts=[redis_url], prefix=app_prefix, capacity=CAPACITY)
    try:
        stop = asyncio.Event()
        accepting = asyncio.ensure_future(_accept_connects(layer, stop))
        sockets: list[Any] = []
        for start in range(0, SOCKETS, 10):  # ten at a time: the connect channel is small too
            sockets += await asyncio.gather(
                *(connect(interface.ws_url(f"/leave/{n}")) for n in range(start, start + 10))
            )
        stop.set()
        reply_channels = set(await accepting)
        assert len(reply_channels) == SOCKETS

        fillers = await _fill(layer, "websocket.disconnect")
        await asyncio.gather(*(ws.close() for ws in sockets))

        await asyncio.sleep(1.5)  # the channel stays full a while: each disconnect meets it

        taken: list[str] = []
        while got := await layer.receive_many(["websocket.disconnect"], timeout=3):
            taken.append(got[1]["reply_channel"])
        ours = [name for name in taken if name in reply_channels]
        assert sorted(ours) == sorted(reply_channels)  # every socket's, each once
        assert len(taken) == fillers + SOCKETS
        text = interface.metrics()
        assert metric(text, "channelworks_interface_disconnects_retried_total") == SOCKETS
        assert metric(text, "channelworks_interface_disconnects_pending") == 0
        assert metric(text, "channelworks_interface_disconnects_lost_total") == 0
    finally:
        await layer.close()
