"""The chat example's settings, plus a feed group with history (recovery after reconnect)."""

from chat.settings import *  # type: ignore[import-not-found, unused-ignore]  # noqa: F403
from chat.settings import INSTALLED_APPS  # type: ignore[import-not-found, unused-ignore]

INSTALLED_APPS = [*INSTALLED_APPS, "tests.dataplane.streams"]
CHANNELWORKS = {
    "ROUTING": "tests.dataplane.streams.routing.channel_routing",
    # short-*: a TTL of 3 s, so a test can see a history expire
    "GROUP_HISTORY": {"feed-*": 1000, "short-*": {"size": 100, "ttl": 3}},
    "GROUP_HISTORY_TTL": 60,
}
ROOT_URLCONF = "tests.dataplane.streams.urls"
