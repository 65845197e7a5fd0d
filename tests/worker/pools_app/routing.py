"""Routes of the worker-pool tests' project: two channels, one consumer."""

from channelworks import route
from tests.worker.pools_app import consumers

channel_routing = [
    route("chan.a", consumers.record),
    route("chan.b", consumers.record),
]
