"""``/healthz`` and ``/readyz`` on the health port, served from a thread.

- ``/healthz``: 200 while the operator's event loop beats (a stuck loop fails the probe, and the
  kubelet restarts the pod).
- ``/readyz``: 200 once the replica is either the leader with its handlers running or a standby
  waiting for the Lease; the body says which.
"""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field

STALE_AFTER_SECONDS = 60.0
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


def serve(state: HealthState, address: str, port: int) -> http.server.ThreadingHTTPServer:
    """Start the server in a daemon thread; ``shutdown()`` the returned server to stop it."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok, body = state.alive, "ok" if state.alive else "event loop stalled"
            elif self.path == "/readyz":
                ok, body = state.ready, state.role
            else:
                self.send_error(404)
                return
            data = (body + "\n").encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would flood the log

    server = http.server.ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
