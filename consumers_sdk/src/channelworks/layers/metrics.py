"""The layer's Prometheus metrics (``channelworks_layer_*``); each takes the registry to use.

- ``channelworks_layer_channel_full_total``: exported by every process that sends (interface,
  worker), read from the layer's ``channel_full_count``;
  ``channelworks_layer_malformed_messages_total`` beside it, from ``malformed_count``.
- ``channelworks_layer_queue_depth{app,channel}`` and
  ``channelworks_layer_oldest_message_age_seconds{app,channel}``: exported by whoever calls
  ``queue_stats()`` regularly (the operator, for every app it runs).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from channelworks.layers.base import ChannelworksLayer
from channelworks.layers.stats import QueueStats


class ChannelFullCollector(Collector):
    """Reports how many messages this process's layer refused or skipped as channel full, and
    how many it dropped as malformed."""

    def __init__(self, layer: ChannelworksLayer, registry: CollectorRegistry) -> None:
        self._layer = layer
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "channelworks_layer_channel_full",
            "Messages refused or skipped because their channel was at capacity.",
        )
        family.add_metric([], float(self._layer.channel_full_count))
        yield family
        malformed = CounterMetricFamily(
            "channelworks_layer_malformed_messages",
            "Messages dropped because they could not be read (not written by this layer).",
        )
        malformed.add_metric([], float(self._layer.malformed_count))
        yield malformed


class QueueMetrics:
    """Queue depth and oldest-message age per app and channel, from ``queue_stats()``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "channelworks_layer_queue_depth",
            "Messages waiting on a channel (taken but unacknowledged ones included).",
            ["app", "channel"],
            registry=registry,
        )
        self.oldest_age = Gauge(
            "channelworks_layer_oldest_message_age_seconds",
            "Age of the oldest message waiting on a channel.",
            ["app", "channel"],
            registry=registry,
        )
        self._seen: dict[str, set[str]] = {}

    def observe(self, app: str, stats: QueueStats) -> None:
        """Set the gauges of ``app``; channels that emptied drop to zero."""
        seen = self._seen.setdefault(app, set())
        for channel in seen - set(stats.channels):
            self.depth.labels(app=app, channel=channel).set(0)
            self.oldest_age.labels(app=app, channel=channel).set(0)
        for channel, channel_stats in stats.channels.items():
            self.depth.labels(app=app, channel=channel).set(channel_stats.depth)
            self.oldest_age.labels(app=app, channel=channel).set(channel_stats.oldest_age_seconds)
            seen.add(channel)

    def forget(self, app: str) -> None:
        """Remove every series of an app that was deleted."""
        for channel in self._seen.pop(app, set()):
            self.depth.remove(app, channel)
            self.oldest_age.remove(app, channel)
