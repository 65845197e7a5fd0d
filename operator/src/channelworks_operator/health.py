"""The operator's HTTP endpoints, each port served from a thread: ``/healthz`` and ``/readyz``
on the health port, ``/metrics`` on the metrics port.

- ``/healthz``: 200 while the operator's event loop beats (a stuck loop fails the probe, and the
  kubelet restarts the pod).
- ``/readyz``: 200 once the replica is either the leader with its handlers running or a standby
  waiting for the Lease; the body says which.
- ``/metrics``: the registry in Prometheus' text format.

Every port takes at most ``MAX_CONNECTIONS`` connections at once (more are closed at once) and
gives a client ``READ_TIMEOUT_SECONDS`` to send its request, so idle or slow clients cannot
pile up threads.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import prometheus_client

STALE_AFTER_SECONDS = 60.0
MAX_CONNECTIONS = 32
READ_TIMEOUT_SECONDS = 5.0
STARTING = "starting"
STANDBY = "standby"
LEADER = "leader"
STOPPING = "stopping"


@dataclass
class HealthState:
    role: str = STARTING
    heartbeat: float = field(default_factory=time.monotonic)

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    @property
    def alive(self) -> bool:
        return time.monotonic() - self.heartbeat < STALE_AFTER_SECONDS

    @property
    def ready(self) -> bool:
        return self.role in (STANDBY, LEADER)


class _BoundedServer(http.server.ThreadingHTTPServer):
    """A thread per connection, at most ``MAX_CONNECTIONS`` of them."""

    daemon_threads = True
    request_queue_size = 256  # accepted at once, then served or closed: none left half-open

    def __init__(self, address: tuple[str, int], handler: type[Any]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _handler(
    state: HealthState, registry: prometheus_client.CollectorRegistry | None
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = READ_TIMEOUT_SECONDS

        def do_GET(self) -> None:
            content_type = "text/plain; charset=utf-8"
            if self.path == "/healthz":
                ok, data = state.alive, b"ok\n" if state.alive else b"event loop stalled\n"
            elif self.path == "/readyz":
                ok, data = state.ready, (state.role + "\n").encode()
            elif self.path.split("?")[0] == "/metrics" and registry is not None:
                ok, data = True, prometheus_client.generate_latest(registry)
                content_type = prometheus_client.CONTENT_TYPE_LATEST
            else:
                self.send_error(404)
                return
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would flood the log

    return Handler


def serve(
    state: HealthState,
    address: str,
    port: int,
    registry: prometheus_client.CollectorRegistry | None = None,
) -> http.server.ThreadingHTTPServer:
    """Start a server in a daemon thread (with ``registry``, it serves ``/metrics`` too);
    ``shutdown()`` the returned server to stop it."""
    server = _BoundedServer((address, port), _handler(state, registry))
    threading.Thread(target=server.serve_forever, name=f"http-{port}", daemon=True).start()
    return server
