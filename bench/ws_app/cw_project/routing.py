"""Channels 1 routing: ``/echo/`` and ``/broadcast/<group>/``; sync consumers, or async ones."""

from channelworks import route
from ws_app.cw_project import consumers as c

ECHO = r"^/echo/$"
BROADCAST = r"^/broadcast/(?P<group>[-\w]+)/$"

channel_routing = [
    route("websocket.connect", c.echo_connect, path=ECHO),
    route("websocket.receive", c.echo_receive, path=ECHO),
    route("websocket.connect", c.broadcast_connect, path=BROADCAST),
    route("websocket.receive", c.broadcast_receive, path=BROADCAST),
    route("websocket.disconnect", c.broadcast_disconnect, path=BROADCAST),
]

async_routing = [
    route("websocket.connect", c.async_echo_connect, path=ECHO),
    route("websocket.receive", c.async_echo_receive, path=ECHO),
    route("websocket.connect", c.async_broadcast_connect, path=BROADCAST),
    route("websocket.receive", c.async_broadcast_receive, path=BROADCAST),
    route("websocket.disconnect", c.async_broadcast_disconnect, path=BROADCAST),
]
