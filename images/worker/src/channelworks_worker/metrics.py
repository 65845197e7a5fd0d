"""The worker's Prometheus metrics; each instance registers on the registry it is given."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from channelworks.process import build

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerMetrics:
    """``channelworks_worker_*`` metrics and ``channelworks_build_info``.

    ``messages_total{channel,outcome}``: outcome is ``ok``, ``error`` (the consumer raised),
    ``unrouted`` (no route matched; the message was dropped), ``timeout`` (past the time limit),
    ``dead_letter`` (handed out too many times) or ``not_retried`` (an HTTP request whose worker
    died, answered 502). ``channel`` is the channel name
    (``websocket.receive``, ``http.request``...), never a per-connection name.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "channelworks_worker_messages_total",
            "Messages handled by this worker, by channel and outcome (ok, error, unrouted).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "channelworks_worker_message_duration_seconds",
            "Time from taking a message to acknowledging it, by channel.",
            ["channel"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "channelworks_worker_in_flight_messages",
            "Messages taken and not yet acknowledged.",
            registry=registry,
        )
        self.concurrency = Gauge(
            "channelworks_worker_concurrency",
            "Messages this worker may handle at once.",
            registry=registry,
        )
        self.dead_letters = Counter(
            "channelworks_worker_dead_letters_total",
            "Messages given up and sent to the dead-letter channel, by channel and reason "
            "(max_deliveries, time_limit).",
            ["channel", "reason"],
            registry=registry,
        )
        self.http_not_retried = Counter(
            "channelworks_worker_http_not_retried_total",
            "HTTP requests handed out again after their worker died and answered 502 instead of "
            "being run a second time (their method is not in the retry methods).",
            registry=registry,
        )
        self.stuck_threads = Gauge(
            "channelworks_worker_stuck_threads",
            "Consumer threads abandoned past the time limit and still running.",
            registry=registry,
        )
        self.build_info = build.build_info(registry, "worker", "channelworks-worker")
        # Observed per message: each labelled child is looked up once (channels are the routed
        # ones and outcomes three, so these stay small).
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    def observe(self, channel: str, outcome: str, seconds: float) -> None:
        counted = self._counted.get((channel, outcome))
        if counted is None:
            counted = self.messages.labels(channel=channel, outcome=outcome)
            self._counted[(channel, outcome)] = counted
        counted.inc()
        timed = self._timed.get(channel)
        if timed is None:
            timed = self._timed[channel] = self.duration.labels(channel=channel)
        timed.observe(seconds)
