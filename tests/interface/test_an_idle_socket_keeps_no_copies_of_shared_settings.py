"""What an open, idle WebSocket's protocol object holds in the interface (issue 15: <= 16 KiB per
idle socket): autobahn copies its 29 protocol options into every protocol and gives each an empty
queue of chopped writes, and ours gave each an empty queue of held frames. Now the options are
read from the factory, and both queues are made when first used: the protocol's attributes fit a
dict of half the size and no empty queue is kept (about 3 KiB less per socket, 18.2 -> 15.8 KiB of
RSS per socket at 4,000 idle sockets in bench/ws.py). Once open, a socket also lets go of its
opening handshake (the raw request and response, autobahn's and Daphne's parsed headers): the
websocket.connect message carried the headers. A synchronous write, the one use of autobahn's
queue, still goes out."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import sys
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.interface.conftest import InProcessInterface
from tests.interface.support import FakeWorker
from tests.support.eventually import eventually_async

SOCKETS = 10
DICT_BYTES_AT_MOST = 2048  # 3,328 bytes with the options copied in (109 attributes)


def _open_protocols() -> list[Any]:
    from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol

    from channelworks_interface import daphne_glue

    return [
        found
        for found in gc.get_objects()
        if type(found) is daphne_glue.WebSocketProtocol  # not isinstance: no lazy object stirs
        and found.state == AutobahnProtocol.STATE_OPEN
    ]


async def _on_the_reactor(call: Any) -> Any:
    """``call()`` in the interface's reactor thread; its result."""
    from twisted.internet import reactor  # the interface's, installed by then

    loop = reactor._asyncioEventloop  # type: ignore[attr-defined]

    async def run() -> Any:
        return call()

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), loop))


async def test_an_idle_protocol_holds_no_option_copies_and_no_empty_queues(
    inprocess: InProcessInterface,
) -> None:
    async with FakeWorker(inprocess.layer), contextlib.AsyncExitStack() as sockets:
        opened: list[ClientConnection] = []
        for n in range(SOCKETS):
            ws = await sockets.enter_async_context(connect(inprocess.ws_url(f"/idle/{n}")))
            await ws.send("ping")  # a round trip: open, then idle again
            assert await ws.recv() == "ping"
            opened.append(ws)

        async def all_open() -> None:
            assert len(await _on_the_reactor(_open_protocols)) >= SOCKETS

        await eventually_async(all_open)
        protocols = await _on_the_reactor(_open_protocols)
        options = set(protocols[0].CONFIG_ATTRS)
        for protocol in protocols:
            attributes = vars(protocol)
            assert not options & set(attributes), sorted(options & set(attributes))
            queues = [name for name, value in attributes.items()
                      if isinstance(value, collections.deque)]  # fmt: skip
            assert not queues, queues
            assert sys.getsizeof(attributes) <= DICT_BYTES_AT_MOST, len(attributes)
            assert not protocol.http_request_data and not protocol.http_response_data
            assert protocol.http_headers == {} and protocol.clean_headers == []
            assert protocol.request.path.startswith("/idle/")  # Daphne logs it at the close
            # The options still read as the server set them.
            assert protocol.maxMessagePayloadSize == protocol.factory.maxMessagePayloadSize
            assert protocol.failByDrop is False

        # A synchronous write (autobahn's queue) still reaches the client, in order.
        target = protocols[0]
        path = target.path.decode() if isinstance(target.path, bytes) else target.path
        client = opened[int(path.rstrip("/").rsplit("/", 1)[1])]
        await _on_the_reactor(lambda: target.sendMessage(b"queued", sync=True))
        await _on_the_reactor(lambda: target.sendMessage(b"after it"))
        assert await asyncio.wait_for(client.recv(), 10) == "queued"
        assert await asyncio.wait_for(client.recv(), 10) == "after it"
