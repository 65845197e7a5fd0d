"""The operator as a real process (``python -m channelworks_operator``) for the tests.

Each process gets its own free metrics and health ports on 127.0.0.1, a log file, and short
timings (resync, retries, Lease) so the tests stay quick. ``metric()`` reads its /metrics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import processes
from tests.support.eventually import eventually

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
TEST_TIMINGS = {
    "CHANNELWORKS_OPERATOR_RESYNC_SECONDS": "3",
    "CHANNELWORKS_OPERATOR_RETRY_DELAY_SECONDS": "3",
    "CHANNELWORKS_OPERATOR_LEASE_DURATION_SECONDS": "4",
    "CHANNELWORKS_OPERATOR_RENEW_DEADLINE_SECONDS": "3",
    "CHANNELWORKS_OPERATOR_RETRY_PERIOD_SECONDS": "0.5",
    "CHANNELWORKS_OPERATOR_STATS_TIMEOUT_SECONDS": "2",
}


class OperatorProcess:
    def __init__(
        self,
        *,
        kubeconfig: Path,
        namespace: str,
        identity: str,
        log_dir: Path,
        lease_name: str = "channelworks-operator",
        env: dict[str, str] | None = None,
    ) -> None:
        self.identity = identity
        self.namespace = namespace
        self.metrics_port = processes.free_port()
        self.health_port = processes.free_port()
        self.log_path = log_dir / f"operator-{identity}.log"
        self.env = {
            **os.environ,
            **TEST_TIMINGS,
            "KUBECONFIG": str(kubeconfig),
            "POD_NAMESPACE": namespace,
            "CHANNELWORKS_OPERATOR_IDENTITY": identity,
            "CHANNELWORKS_OPERATOR_NAMESPACES": namespace,
            "CHANNELWORKS_OPERATOR_LEADER_ELECTION_NAME": lease_name,
            "CHANNELWORKS_OPERATOR_BIND_ADDRESS": HOST,
            "CHANNELWORKS_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "CHANNELWORKS_OPERATOR_HEALTH_PORT": str(self.health_port),
            "CHANNELWORKS_OPERATOR_LOG_FORMAT": "text",
            **(env or {}),
        }
        self.command = [sys.executable, "-m", "channelworks_operator"]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        eventually(
            self._ready,
            timeout=START_TIMEOUT,
            interval=0.2,
            message=f"operator {self.identity} ready",
        )
        return self

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"operator {self.identity} exited:\n{self.log()}")
        return self.get("/readyz", self.health_port) is not None

    def get(self, path: str, port: int) -> str | None:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as response:
                body: bytes = response.read()
                return body.decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def role(self) -> str | None:
        body = self.get("/readyz", self.health_port)
        return None if body is None else body.strip()

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        text = self.get("/metrics", self.metrics_port)
        found = [] if text is None else processes.samples(text, name, labels)
        return sum(found) if found else None

    def reconciles(self) -> float:
        total = 0.0
        for result in ("success", "blocked", "invalid", "error"):
            total += self.metric("channelworks_operator_reconcile_total", {"result": result}) or 0
        return total

    def wait_full_passes(self, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until ``count`` reconciles that began after this call have finished (one that
        was running when it was called does not count): waiting on the passes themselves, not
        on a time that a loaded machine may not fit one into."""
        before = self.reconciles()
        eventually(
            lambda: self.reconciles() >= before + count + 1,
            timeout=timeout,
            interval=0.2,
            message=f"operator {self.identity}: {count} full reconcile passes",
        )

    def assert_ran_cleanly(self) -> None:
        """No failed or blocked reconcile so far, still running, and no traceback in its log."""
        for result in ("error", "blocked"):
            runs = self.metric("channelworks_operator_reconcile_total", {"result": result})
            assert not runs, f"operator {self.identity}: {runs:g} {result} reconciles"
        assert self.running, f"operator {self.identity} exited:\n{self.log()}"
        assert "Traceback" not in self.log(lines=100_000), self.log()

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then wait; the exit code."""
        return self._signal(signal.SIGTERM)

    def kill(self) -> int | None:
        return self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> int | None:
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signum)
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(STOP_TIMEOUT)
        return self._process.returncode

    def log(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"<operator {self.identity}>"


def describe(processes: list[OperatorProcess]) -> str:
    return "\n\n".join(f"--- {p.identity} ---\n{p.log()}" for p in processes)
