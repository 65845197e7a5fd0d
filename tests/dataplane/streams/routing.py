from channelworks import route
from tests.dataplane.streams import consumers

FEED = r"^/feed/(?P<group>[\w.-]+)/$"
PUBLISH = r"^/publish/(?P<group>[\w.-]+)/$"

channel_routing = [
    route("websocket.connect", consumers.feed_connect, path=FEED),
    route("websocket.receive", consumers.feed_receive, path=FEED),
    route("websocket.disconnect", consumers.feed_disconnect, path=FEED),
    route("websocket.connect", consumers.publish_connect, path=PUBLISH),
    route("websocket.receive", consumers.publish_receive, path=PUBLISH),
]
