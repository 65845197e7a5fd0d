"""Channels 1's ``channels.test`` path; everything lives in :mod:`channelworks.testing`."""

from __future__ import annotations

from channelworks.testing import (
    ChannelTestCase,
    ChannelTestCaseMixin,
    Client,
    HttpClient,
    HttpReply,
    TransactionChannelTestCase,
    WSClient,
    apply_routes,
    http_request,
    in_memory_layer,
    next_message,
)

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
