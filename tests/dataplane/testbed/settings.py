"""The chat example's settings with the testbed's routing and URLs added."""

from chat.settings import *  # type: ignore[import-not-found, unused-ignore]  # noqa: F403

CHANNELWORKS = {"ROUTING": "tests.dataplane.testbed.routing.channel_routing"}
ROOT_URLCONF = "tests.dataplane.testbed.urls"
