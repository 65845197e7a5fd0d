from channelworks import route, route_class
from tests.dataplane.bridgepage import consumers

channel_routing = [
    route_class(consumers.Demultiplexer, path=r"^/ws/$"),
    route("websocket.connect", consumers.watch, path=r"^/watch/$"),
]
