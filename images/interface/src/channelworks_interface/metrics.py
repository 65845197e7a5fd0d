"""The interface server's Prometheus metrics, all registered on a registry the caller gives."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from channelworks.process import build

# Labels never carry per-connection, per-user or per-path values.
DIRECTION_IN = "in"  # from clients onto the layer
DIRECTION_OUT = "out"  # from the layer (workers) to clients
PROTOCOL_WEBSOCKET = "websocket"
PROTOCOL_HTTP = "http"
HANDSHAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric of the interface; build one per registry (tests use a fresh one each)."""

    def __init__(self, registry: CollectorRegistry, *, process_collectors: bool = False) -> None:
        self.registry = registry
        if process_collectors:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.connections = Gauge(
            "channelworks_interface_connections",
            "WebSocket connections currently open (accepted and not yet closed).",
            registry=registry,
        )
        self._messages = _MessageCounts()
        registry.register(self._messages)
        self.http_requests = Counter(
            "channelworks_interface_http_requests",
            "HTTP requests answered, by status code (including the interface's own 4xx/5xx).",
            ["code"],
            registry=registry,
        )
        self.handshake_duration = Histogram(
            "channelworks_interface_handshake_duration_seconds",
            "Time from a WebSocket upgrade request to its accept or refusal.",
            buckets=HANDSHAKE_BUCKETS,
            registry=registry,
        )
        self.refusals = Counter(
            "channelworks_interface_refusals",
            "Requests, connections and sockets the interface answered itself, by reason (origin, "
            "timeout, channel_full, too_large, draining, worker_error, layer_error, "
            "connection_limit, read_timeout, rate_limited, slow_reader).",
            ["protocol", "reason"],
            registry=registry,
        )
        self.tcp_connections = Gauge(
            "channelworks_interface_tcp_connections",
            "TCP connections open now (HTTP and WebSocket), counted against "
            "CHANNELWORKS_INTERFACE_MAX_CONNECTIONS.",
            registry=registry,
        )
        self.throttled = Counter(
            "channelworks_interface_throttled",
            "Times a WebSocket sent faster than CHANNELWORKS_INTERFACE_MESSAGE_RATE allows and "
            "the interface stopped reading from it until it was within its rate again.",
            registry=registry,
        )
        self.disconnects_pending = Gauge(
            "channelworks_interface_disconnects_pending",
            "websocket.disconnect messages waiting to be sent again (their channel was full or "
            "the layer failed).",
            registry=registry,
        )
        self.disconnects_retried = Counter(
            "channelworks_interface_disconnects_retried",
            "websocket.disconnect messages that did not fit on the first try and were queued to "
            "be sent again.",
            registry=registry,
        )
        self.disconnects_lost = Counter(
            "channelworks_interface_disconnects_lost",
            "websocket.disconnect messages given up: the retry queue was full, or the process "
            "stopped before they could be sent.",
            registry=registry,
        )
        self.build_info = build.build_info(registry, "interface", "channelworks-interface")

    def message_in(self, protocol: str) -> None:
        self._messages.incoming[protocol] += 1

    def message_out(self, protocol: str) -> None:
        self._messages.outgoing[protocol] += 1

    def refused(self, protocol: str, reason: str) -> None:
        self.refusals.labels(protocol, reason).inc()


class _MessageCounts(Collector):
    """``channelworks_interface_messages_total``, counted on every message with a plain addition
    on the event loop (a Prometheus ``Counter`` takes a lock per ``inc()``: about 0.5 µs, twice
    per echoed message) and read when scraped."""

    def __init__(self) -> None:
        self.incoming = {PROTOCOL_WEBSOCKET: 0, PROTOCOL_HTTP: 0}
        self.outgoing = {PROTOCOL_WEBSOCKET: 0, PROTOCOL_HTTP: 0}

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "channelworks_interface_messages",
            "Messages relayed: direction=in from clients onto the layer, out from workers to "
            "clients.",
            labels=["direction", "protocol"],
        )
        for direction, counts in ((DIRECTION_IN, self.incoming), (DIRECTION_OUT, self.outgoing)):
            for protocol, count in dict(counts).items():
                family.add_metric([direction, protocol], count)
        yield family
