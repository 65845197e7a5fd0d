"""Where each message goes, as in Channels 1's liveblog example (only the imports differ)."""

from blog import consumers
from channelworks import include, route

stream_routing = [
    route("websocket.connect", consumers.watch, path=r"^/(?P<slug>[-\w]+)/stream/$"),
    route("websocket.disconnect", consumers.stop_watching, path=r"^/(?P<slug>[-\w]+)/stream/$"),
]

channel_routing = [
    include(stream_routing, path=r"^/liveblog"),
    route("websocket.connect", consumers.refuse),  # other WebSocket paths: refused (403)
    route("http.request", "django"),
]
