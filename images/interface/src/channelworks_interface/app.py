"""The ASGI application Daphne serves: every connection is bridged onto the channel layer.

No user code runs here. Each HTTP request and WebSocket becomes Channels-1 messages on the layer
(``http.request``, ``websocket.connect``/``receive``/``disconnect``) and the workers' replies on
the connection's reply channel are relayed back.
"""

from __future__ import annotations

import logging

from channelworks_interface import http_bridge, websocket_bridge
from channelworks_interface.bridging import Bridge, Receive, Scope, Send

logger = logging.getLogger(__name__)


class InterfaceApplication:
    """ASGI 3 application: ``await app(scope, receive, send)`` per connection."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "websocket":
            session = websocket_bridge.WebSocketSession(self.bridge, scope, receive, send)
            del scope  # this frame lives as long as the socket: the session keeps what it needs
            await session.run()
        elif kind == "http":
            await http_bridge.HttpExchange(self.bridge, scope, receive, send).run()
        elif kind == "lifespan":
            await _lifespan(receive, send)
        else:
            logger.warning("ignoring a connection of unknown ASGI type %r", kind)


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop per process: acknowledge both events (Daphne sends none)."""
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
