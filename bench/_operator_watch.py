"""When objects first appeared, as the API server's watch streams report them
(bench/operator_bench.py).

One daemon thread per kind watches one namespace (``?watch=1``, plain HTTPS with the bearer
token) and records ``time.perf_counter()`` the first time it sees each object, for Deployments
the first time all their replicas are available, and for RealtimeApps the first time their
``Ready`` condition is ``True``::

    seen = FirstSeen(server, token, ca_file, namespace, [("apps/v1", "Deployment"), ...])
    seen.start()
    ...
    seen.first("Deployment", "app-000-interface")   # perf_counter() or None
    seen.available("Deployment", "app-000-worker")
    seen.ready("app-000")
    seen.stop()
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from channelworks_operator import spec
from channelworks_operator.kube import object_path

WATCH_SECONDS = 30  # the server ends each watch after this; the thread opens the next one
RETRY_SECONDS = 0.5


class FirstSeen:
    """First sighting of each object of some kinds in one namespace, from watch streams."""

    def __init__(
        self,
        server: str,
        token: str,
        ca_file: Path,
        namespace: str,
        kinds: Iterable[tuple[str, str]],
    ) -> None:
        self.server = server
        self.namespace = namespace
        self.kinds = list(dict.fromkeys([*kinds, (spec.API_VERSION, spec.KIND)]))
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self._lock = threading.Lock()
        self._first: dict[tuple[str, str], float] = {}
        self._ready: dict[str, float] = {}
        self._available: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._listed: set[str] = set()
        self.errors: list[str] = []

    def start(self, timeout: float = 30.0) -> None:
        """Start the watches; return once each has listed its kind (so nothing is missed)."""
        for api_version, kind in self.kinds:
            thread = threading.Thread(
                target=self._watch, args=(api_version, kind), name=f"watch-{kind}", daemon=True
            )
            thread.start()
        deadline = time.monotonic() + timeout
        while len(self._listed) < len(self.kinds):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"watches not started within {timeout:.0f}s: {self.errors}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()

    def first(self, kind: str, name: str) -> float | None:
        with self._lock:
            return self._first.get((kind, name))

    def available(self, kind: str, name: str) -> float | None:
        with self._lock:
            return self._available.get((kind, name))

    def ready(self, app: str) -> float | None:
        with self._lock:
            return self._ready.get(app)

    # -- the watch threads --------------------------------------------------------------------

    def _get(self, path: str, query: Mapping[str, str], timeout: float) -> Any:
        url = f"{self.server}{path}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers=self._headers)
        return urllib.request.urlopen(request, timeout=timeout, context=self._context)

    def _watch(self, api_version: str, kind: str) -> None:
        path = object_path(api_version, kind, self.namespace)
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    with self._get(path, {}, 30) as response:
                        listing = json.load(response)
                    for item in listing.get("items") or []:
                        self._saw(kind, item)
                    version = listing["metadata"]["resourceVersion"]
                    with self._lock:
                        self._listed.add(kind)
                query = {
                    "watch": "1",
                    "resourceVersion": version,
                    "timeoutSeconds": str(WATCH_SECONDS),
                }
                with self._get(path, query, WATCH_SECONDS + 10) as response:
                    for line in response:
                        if self._stop.is_set():
                            return
                        event = json.loads(line)
                        if event.get("type") == "ERROR":  # 410 Gone: list again
                            version = ""
                            break
                        self._saw(kind, event["object"])
                        version = event["object"]["metadata"]["resourceVersion"]
            except (OSError, ValueError, KeyError) as error:
                if self._stop.is_set():
                    return
                with self._lock:
                    self.errors.append(f"watch {kind}: {error}")
                version = ""
                time.sleep(RETRY_SECONDS)

    def _saw(self, kind: str, obj: Mapping[str, Any]) -> None:
        now = time.perf_counter()
        name = obj.get("metadata", {}).get("name", "")
        with self._lock:
            self._first.setdefault((kind, name), now)
            if kind == spec.KIND and name not in self._ready and _is_ready(obj):
                self._ready[name] = now
            if kind == "Deployment" and (kind, name) not in self._available and _available(obj):
                self._available[(kind, name)] = now


def _is_ready(app: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (app.get("status") or {}).get("conditions") or []
    )


def _available(deployment: Mapping[str, Any]) -> bool:
    """Every wanted replica available, as the Deployment controller last reported."""
    wanted = int(deployment.get("spec", {}).get("replicas", 1))
    state = deployment.get("status") or {}
    generation = int(deployment.get("metadata", {}).get("generation", 0))
    observed = int(state.get("observedGeneration", 0)) >= generation
    return observed and int(state.get("availableReplicas", 0)) >= wanted
