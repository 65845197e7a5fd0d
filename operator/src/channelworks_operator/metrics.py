"""The operator's Prometheus metrics, on a registry given by the caller (tests use a fresh one)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from channelworks.layers import metrics as layer_metrics
from channelworks.process import build
from channelworks_operator import spec
from channelworks_operator.autoscaler import InterfaceLoad

RESULTS = ("success", "blocked", "invalid", "error")


class Metrics:
    """``channelworks_operator_*`` metrics and ``channelworks_build_info``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.reconcile_total = Counter(
            "channelworks_operator_reconcile",
            "Reconciles of RealtimeApps by result (success, blocked, invalid, error).",
            ["result"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            "channelworks_operator_reconcile_duration_seconds",
            "Time one reconcile of one RealtimeApp took.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.desired_replicas = Gauge(
            "channelworks_operator_autoscaler_desired_replicas",
            "Worker replicas the built-in autoscaler wants, per app (<namespace>.<name>).",
            ["app"],
            registry=registry,
        )
        self.max_replicas = Gauge(
            "channelworks_operator_autoscaler_max_replicas",
            "The most worker replicas the autoscaler may set, per app (<namespace>.<name>).",
            ["app"],
            registry=registry,
        )
        self.pool_desired_replicas = Gauge(
            "channelworks_operator_autoscaler_pool_desired_replicas",
            "Worker replicas the built-in autoscaler wants, per app and worker pool "
            '("default" without spec.workerPools).',
            ["app", "pool"],
            registry=registry,
        )
        self.pool_queue_depth = Gauge(
            spec.POOL_QUEUE_DEPTH_METRIC,
            "Messages waiting on the channels a worker pool takes, per app and pool.",
            ["app", "pool"],
            registry=registry,
        )
        self.pool_oldest_age = Gauge(
            spec.POOL_OLDEST_AGE_METRIC,
            "Age of the oldest message waiting on a worker pool's channels, per app and pool.",
            ["app", "pool"],
            registry=registry,
        )
        self._pools: dict[str, set[str]] = {}
        self.interface_connections = Gauge(
            "channelworks_operator_interface_connections",
            "WebSockets open over an app's interface pods, as they last reported them (what "
            "the interface ScaledObject/HPA read).",
            ["app"],
            registry=registry,
        )
        self.interface_cpu = Gauge(
            "channelworks_operator_interface_cpu_percent",
            "CPU of an app's interface processes, summed, in percent of one core, as reported.",
            ["app"],
            registry=registry,
        )
        # channelworks_layer_queue_depth / _oldest_message_age_seconds{app,channel}, from the
        # queue statistics the autoscaler reads.
        self.queues = layer_metrics.QueueMetrics(registry)
        self.objects_applied = Counter(
            "channelworks_operator_objects_applied",
            "Child objects by what their apply did "
            "(created, updated, unchanged, synced, skipped, unserved).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.leader = Gauge(
            "channelworks_operator_leader",
            "1 while this replica holds the leader Lease and acts, else 0.",
            registry=registry,
        )
        self.apps = Gauge(
            "channelworks_operator_apps",
            "RealtimeApps this replica knows of.",
            registry=registry,
        )
        for result in RESULTS:
            self.reconcile_total.labels(result=result)
        build.build_info(registry, "operator", "channelworks-operator")

    def autoscaled(self, app: str, pools: list[tuple[str, int | None, int, int, float]]) -> None:
        """The autoscalers' run for ``app``: per pool (``scaling.pool_figures``: name, desired
        (None: KEDA or an HPA decides), max replicas, depth, oldest age) and what the built-in
        autoscaler decided added up; no pool: its series go."""
        if not pools:
            self.forget_autoscaler(app)
            return
        decided = [item for item in pools if item[1] is not None]
        if decided:
            self.desired_replicas.labels(app=app).set(sum(item[1] or 0 for item in decided))
            self.max_replicas.labels(app=app).set(sum(item[2] for item in decided))
        else:
            for gauge in (self.desired_replicas, self.max_replicas):
                with contextlib.suppress(KeyError):
                    gauge.remove(app)
        names = {item[0] for item in pools}
        for gone in self._pools.get(app, set()) - names:
            self._forget_pool(app, gone)
        self._pools[app] = names
        for name, desired, _, depth, oldest_age in pools:
            if desired is None:
                with contextlib.suppress(KeyError):
                    self.pool_desired_replicas.remove(app, name)
            else:
                self.pool_desired_replicas.labels(app=app, pool=name).set(desired)
            self.pool_queue_depth.labels(app=app, pool=name).set(depth)
            self.pool_oldest_age.labels(app=app, pool=name).set(oldest_age)

    def observe_load(self, app: str, load: InterfaceLoad) -> None:
        """What the interface pods of ``app`` last reported (``QueueStatsReader``'s callback)."""
        self.interface_connections.labels(app=app).set(load.connections)
        if load.cpu_percent is not None:
            self.interface_cpu.labels(app=app).set(load.cpu_percent)

    def _forget_pool(self, app: str, pool: str) -> None:
        for gauge in (self.pool_desired_replicas, self.pool_queue_depth, self.pool_oldest_age):
            with contextlib.suppress(KeyError):
                gauge.remove(app, pool)

    def forget_autoscaler(self, app: str) -> None:
        """Drop the built-in autoscaler's series of an app it no longer scales; its queue series
        stay (KEDA, an HPA and the alerts read them)."""
        with contextlib.suppress(KeyError):
            self.desired_replicas.remove(app)
        with contextlib.suppress(KeyError):
            self.max_replicas.remove(app)
        for pool in self._pools.pop(app, set()):
            self._forget_pool(app, pool)

    def forget_app(self, app: str) -> None:
        """Drop every per-app series of an app that is gone."""
        self.forget_autoscaler(app)
        self.queues.forget(app)
        for gauge in (self.interface_connections, self.interface_cpu):
            with contextlib.suppress(KeyError):
                gauge.remove(app)
