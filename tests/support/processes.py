"""Real processes for tests: free loopback ports, metric pages, and subprocess wrappers.

Every process listens on 127.0.0.1 only, on ports the kernel reported free, writes its output to
a log file (shown when a test fails), and is stopped by whoever started it: SIGTERM, then SIGKILL
of its process group after a bound. ``Interface`` and ``Worker`` are the runtimes' console scripts
with their probe and metrics ports on free ports; the data-plane tests group them into stacks
(``tests/dataplane/processes.py``), the interface tests start one alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
STOP_SECONDS = 20.0


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the kernel's pick; bind it soon)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without our own variables, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CHANNELWORKS_", "DJANGO_", "PYTHONPATH"))
    }
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def samples(text: str, name: str, labels: Mapping[str, str] | None = None) -> list[float]:
    """The values of the samples ``name`` whose labels include ``labels``, in a /metrics page."""
    wanted = dict(labels or {})
    return [
        float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items())
    ]


def metric(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of the samples ``name`` whose labels include ``labels`` (0.0 when none)."""
    return sum(samples(text, name, labels))


class Process:
    """A subprocess whose output goes to ``<log_dir>/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # signals from the test's terminal do not reach it
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def send_signal(self, number: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(number)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the process and its group."""
        self.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            code = self.popen.wait(10)
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a node failure would."""
        self.send_signal(signal.SIGKILL)
        self.popen.wait(10)


class Served(Process):
    """A process with probes and metrics on ``metrics_port``."""

    metrics_port: int

    def probe(self, path: str) -> int:
        """The status of GET ``path`` on the metrics port (0 when nothing answers)."""
        try:
            url = f"http://{HOST}:{self.metrics_port}{path}"
            return httpx.get(url, timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def metrics(self) -> str:
        return httpx.get(f"http://{HOST}:{self.metrics_port}/metrics", timeout=5).text

    def ready(self) -> bool:
        if not self.alive:
            code = self.popen.poll()
            raise RuntimeError(f"{self.name} exited early (code {code}):\n{self.log()}")
        return self.probe("/readyz") == 200


class Interface(Served):
    """A ``channelworks-interface`` process."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        full_env = {
            **env,
            "PORT": str(self.port),
            "CHANNELWORKS_INTERFACE_HOST": HOST,
            "CHANNELWORKS_METRICS_HOST": HOST,
            "CHANNELWORKS_METRICS_PORT": str(self.metrics_port),
        }
        super().__init__(name, [str(BIN / "channelworks-interface")], full_env, log_dir)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://{HOST}:{self.port}{path}"


class Worker(Served):
    """A ``channelworks-worker`` process."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path, cwd: Path) -> None:
        self.metrics_port = free_port()
        full_env = {
            **env,
            "CHANNELWORKS_METRICS_HOST": HOST,
            "CHANNELWORKS_METRICS_PORT": str(self.metrics_port),
        }
        super().__init__(name, [str(BIN / "channelworks-worker")], full_env, log_dir, cwd)
