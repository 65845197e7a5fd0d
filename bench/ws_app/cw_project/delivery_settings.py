"""The Channelworks side of bench/delivery.py: the bench groups keep a history (recovery)."""

from ws_app.cw_project.settings import *  # noqa: F403
from ws_app.cw_project.settings import CHANNELWORKS

CHANNELWORKS = {
    **CHANNELWORKS,
    "GROUP_HISTORY": {"bench-*": 10_000},
    "GROUP_HISTORY_TTL": 300,
}
