"""Test consumers without Redis, workers or interface servers (Channels 1's ``channels.test``).

``ChannelTestCase`` gives each test an in-memory layer; ``Client``/``WSClient`` send messages as a
connection would and run the routed consumers in the test's thread; ``http_request`` runs an HTTP
request through the routing (Django's views by default); ``apply_routes`` swaps the routing;
``in_memory_layer`` installs an in-memory layer for plain pytest functions.
"""

from __future__ import annotations

from channelworks.testing.base import (
    ChannelTestCase,
    ChannelTestCaseMixin,
    Client,
    TransactionChannelTestCase,
    apply_routes,
    in_memory_layer,
    next_message,
)
from channelworks.testing.http import HttpReply, http_request
from channelworks.testing.websocket import WSClient

HttpClient = WSClient  # Channels 1.0's name for WSClient

__all__ = [
    "ChannelTestCase",
    "ChannelTestCaseMixin",
    "Client",
    "HttpClient",
    "HttpReply",
    "TransactionChannelTestCase",
    "WSClient",
    "apply_routes",
    "http_request",
    "in_memory_layer",
    "next_message",
]
