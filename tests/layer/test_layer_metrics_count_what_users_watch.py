"""The layer's metrics: ChannelFull counts and queue depth/age per app and channel."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from channelworks.exceptions import ChannelFull
from channelworks.layers.metrics import ChannelFullCollector, QueueMetrics

from .conftest import LayerFactory


async def test_channel_full_refusals_are_counted(make_layer: LayerFactory) -> None:
    layer = make_layer(capacity=1)
    registry = CollectorRegistry()
    ChannelFullCollector(layer, registry)
    await layer.send("tiny", {})
    with pytest.raises(ChannelFull):
        await layer.send("tiny", {})
    assert registry.get_sample_value("channelworks_layer_channel_full_total") == 1


async def test_queue_gauges_follow_queue_stats(make_layer: LayerFactory) -> None:
    layer = make_layer()
    registry = CollectorRegistry()
    metrics = QueueMetrics(registry)
    for number in range(3):
        await layer.send("http.request", {"n": number})
    metrics.observe("demo.chat", await layer.queue_stats())
    labels = {"app": "demo.chat", "channel": "http.request"}
    assert registry.get_sample_value("channelworks_layer_queue_depth", labels) == 3
    age = registry.get_sample_value("channelworks_layer_oldest_message_age_seconds", labels)
    assert age is not None and 0 <= age < 5
    for _ in range(3):
        await layer.receive("http.request")
    metrics.observe("demo.chat", await layer.queue_stats())
    assert registry.get_sample_value("channelworks_layer_queue_depth", labels) == 0
    metrics.forget("demo.chat")
    assert registry.get_sample_value("channelworks_layer_queue_depth", labels) is None
