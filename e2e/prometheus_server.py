"""A Prometheus server (or kube-state-metrics) run as a process beside the test, on a free port
of 127.0.0.1, and Prometheus' HTTP API as the tests read it.

The e2e suite runs inside the node's network namespace (``e2e/node.sh exec``), so a process
started here reaches pod IPs and the API server, and its 127.0.0.1 is the node's own.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.processes import free_port

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0


class PrometheusError(AssertionError):
    """Prometheus did not start, or its API answered an error."""


@dataclass
class Server:
    """A long-running process with an HTTP port on 127.0.0.1, its output in ``log``."""

    command: Sequence[str]
    port: int
    ready_path: str
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                list(self.command), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(
                    f"{self.command[0]} exited with {self.process.returncode}:\n{self.tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise PrometheusError(f"{self.command[0]} not ready within {timeout:.0f}s:\n{self.tail()}")

    def tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)


def prometheus_server(binary: str, config: Path, data: Path, log: Path) -> Server:
    port = free_port()
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2h",
        "--web.enable-lifecycle",
    ]
    return Server(command, port, "/-/ready", log)


def kube_state_metrics_server(binary: str, kubeconfig: str, namespaces: str, log: Path) -> Server:
    """kube-state-metrics for the kube_* series of the dashboard and alerts."""
    port, telemetry = free_port(), free_port()
    command = [
        binary,
        f"--kubeconfig={kubeconfig}",
        "--host=127.0.0.1",
        f"--port={port}",
        "--telemetry-host=127.0.0.1",
        f"--telemetry-port={telemetry}",
        "--resources=deployments,statefulsets,pods",
        f"--namespaces={namespaces}",
    ]
    return Server(command, port, "/metrics", log)


@dataclass(frozen=True)
class PrometheusAPI:
    """Prometheus' HTTP API (``/api/v1``)."""

    url: str

    def _get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        address = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(address, timeout=REQUEST_TIMEOUT) as answer:
                document = json.load(answer)
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"GET {address}: {error.code} {error.read()[:2000]!r}") from error
        if document.get("status") != "success":
            raise PrometheusError(f"GET {address}: {document}")
        return document["data"]

    def query(self, expression: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expression}
        if at is not None:
            params["time"] = f"{at:.3f}"
        result: list[dict[str, Any]] = self._get("query", **params)["result"]
        return result

    def query_range(
        self, expression: str, start: float, end: float, step: float = 5.0
    ) -> list[dict[str, Any]]:
        data = self._get(
            "query_range",
            query=expression,
            start=f"{start:.3f}",
            end=f"{end:.3f}",
            step=f"{step:g}",
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self._get("targets", state="active")["activeTargets"]
        return active

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("rules")["groups"]
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("alerts")["alerts"]
        return alerts

    def reload(self) -> None:
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as answer:
            if answer.status != 200:
                raise PrometheusError(f"reload: {answer.status}")
