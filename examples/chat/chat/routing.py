"""Where each message goes, as in a Channels 1 project (only the imports differ)."""

from channelworks import route, route_class
from rooms import consumers

channel_routing = [
    # One socket per browser tab carries every room: join, leave and send are commands on it.
    route_class(consumers.ChatConsumer, path=r"^/chat/stream/$"),
    # Any other WebSocket path is refused (HTTP 403) instead of silently accepted.
    route("websocket.connect", consumers.refuse),
    # Pages, login and the admin: Django's own views, run by the workers.
    route("http.request", "django"),
]
