"""The operator's Prometheus metrics, on a registry given by the caller (tests use a fresh one)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from channelworks.layers import metrics as layer_metrics
from channelworks.process import build

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

    def forget_autoscaler(self, app: str) -> None:
        """Drop the built-in autoscaler's series of an app it no longer scales; its queue series
        stay (KEDA, an HPA and the alerts read them)."""
        with contextlib.suppress(KeyError):
            self.desired_replicas.remove(app)
        with contextlib.suppress(KeyError):
            self.max_replicas.remove(app)

    def forget_app(self, app: str) -> None:
        """Drop every per-app series of an app that is gone."""
        self.forget_autoscaler(app)
        self.queues.forget(app)
