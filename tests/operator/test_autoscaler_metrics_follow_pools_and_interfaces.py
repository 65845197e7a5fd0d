"""The operator's autoscaling series: per worker pool (its queue and wanted workers) and the
interface pods' connections and CPU, read from real reports in a real Redis; series of a pool
or an app that is gone are removed."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from channelworks.layers import RedisChannelLayer
from channelworks_operator.metrics import Metrics
from channelworks_operator.queue_metrics import LayerTarget, QueueStatsReader


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_each_pool_has_its_own_series_and_a_removed_pool_loses_them() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.autoscaled("ns.chat", [("http", 2, 6, 25, 1.5), ("sockets", 3, 3, 70, 8.0)])
    assert value(registry, "channelworks_operator_autoscaler_desired_replicas", app="ns.chat") == 5
    assert value(registry, "channelworks_operator_autoscaler_max_replicas", app="ns.chat") == 9
    pool = {"app": "ns.chat", "pool": "sockets"}
    assert value(registry, "channelworks_operator_autoscaler_pool_desired_replicas", **pool) == 3
    assert value(registry, "channelworks_operator_pool_queue_depth", **pool) == 70
    assert value(registry, "channelworks_operator_pool_oldest_message_age_seconds", **pool) == 8.0

    metrics.autoscaled("ns.chat", [("http", 1, 6, 0, 0.0)])  # the sockets pool was removed
    assert value(registry, "channelworks_operator_pool_queue_depth", **pool) is None
    assert value(registry, "channelworks_operator_autoscaler_desired_replicas", app="ns.chat") == 1
    metrics.autoscaled("ns.chat", [])  # autoscaling off: nothing of the autoscaler stays
    assert (
        value(registry, "channelworks_operator_autoscaler_desired_replicas", app="ns.chat") is None
    )
    http = {"app": "ns.chat", "pool": "http"}
    assert value(registry, "channelworks_operator_pool_queue_depth", **http) is None


def test_the_interfaces_reports_become_the_gauges_keda_and_the_hpa_read(redis_url: str) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    prefix = "ns.chat"

    async def run() -> None:
        pods = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
        reader = QueueStatsReader(observe_load=metrics.observe_load)
        try:
            await pods.report_load("chat-interface-a", 700, 30, cpu_percent=55.5)
            await pods.report_load("chat-interface-b", 450, 30, cpu_percent=40.0)
            await pods.report_load("chat-interface-old", 50, 30)  # an image without CPU
            load = await reader.interface_load("ns/chat", LayerTarget(redis_url, False, prefix), 5)
            assert (load.connections, load.cpu_percent, load.pods) == (1200, 95.5, 3)
            count = await reader.connections("ns/chat", LayerTarget(redis_url, False, prefix), 5)
            assert count == 1200
        finally:
            await reader.close()
            await pods.close()

    asyncio.run(run())
    gauge = "channelworks_operator_interface_connections"
    assert value(registry, gauge, app=prefix) == 1200
    assert value(registry, "channelworks_operator_interface_cpu_percent", app=prefix) == 95.5
    metrics.forget_app(prefix)
    assert value(registry, gauge, app=prefix) is None
