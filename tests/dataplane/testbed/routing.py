"""The testbed's routes first, then everything of the chat example."""

from channelworks import include, route
from tests.dataplane.testbed import consumers

channel_routing = [
    route("websocket.connect", consumers.accept, path=r"^/echo/$"),
    route("websocket.receive", consumers.echo, path=r"^/echo/$"),
    route("websocket.connect", consumers.join_lobby, path=r"^/lobby/$"),
    route("websocket.disconnect", consumers.leave_lobby, path=r"^/lobby/$"),
    route("websocket.connect", consumers.accept, path=r"^/explode/$"),
    route("websocket.receive", consumers.explode, path=r"^/explode/$"),
    route("websocket.connect", consumers.explode_on_connect, path=r"^/explode-on-connect/$"),
    # A channel of the application's own: only messages of kind "known" have a route.
    route("testbed.jobs", consumers.job, kind=r"^known$"),
    include("chat.routing.channel_routing"),
]
