"""Routes of the hardening tests' project."""

from channelworks import route
from tests.worker.hardening_app import consumers

channel_routing = [
    route("http.request", consumers.http_request),
    route("websocket.receive", consumers.async_receive, path=r"^/async/$"),
    route("websocket.receive", consumers.receive),
]
