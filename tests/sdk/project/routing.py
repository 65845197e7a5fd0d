"""The test project's routing, as a Channels 1 project writes it (only the imports differ)."""

from channelworks import include, route, route_class
from tests.sdk.project import consumers

liveblog_routing = [
    route("websocket.connect", consumers.liveblog_connect, path=r"^/(?P<slug>[-\w]+)/stream/$"),
]

channel_routing = [
    route("websocket.connect", consumers.whoami_connect, path=r"^/whoami/$"),
    route("websocket.receive", consumers.whoami_receive, path=r"^/whoami/$"),
    route_class(consumers.RoomConsumer, path=r"^/rooms/(?P<room>[a-z]+)/$"),
    include("tests.sdk.project.routing.liveblog_routing", path=r"^/liveblog"),
    route("http.request", "django"),
]
