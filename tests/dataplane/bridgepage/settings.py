"""The chat example's settings, plus the Channels 1 page and its consumers."""

from chat.settings import *  # type: ignore[import-not-found, unused-ignore]  # noqa: F403
from chat.settings import INSTALLED_APPS  # type: ignore[import-not-found, unused-ignore]

INSTALLED_APPS = [*INSTALLED_APPS, "tests.dataplane.bridgepage"]
CHANNELWORKS = {"ROUTING": "tests.dataplane.bridgepage.routing.channel_routing"}
ROOT_URLCONF = "tests.dataplane.bridgepage.urls"
