from channelworks import route_class
from tests.dataplane.bridgepage import consumers

channel_routing = [route_class(consumers.Demultiplexer, path=r"^/ws/$")]
