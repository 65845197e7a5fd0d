"""Class-based consumers (Channels 1's ``channels.generic``)."""

from __future__ import annotations

from channelworks.generic.base import BaseConsumer

__all__ = ["BaseConsumer"]
