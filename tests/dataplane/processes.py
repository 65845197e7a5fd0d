"""Real processes for the data-plane tests: interface servers, workers, ``manage.py``, dev mode.

Every process listens on 127.0.0.1 only, on ports the kernel reported free, writes its output to
a log file (shown when a test fails), and is stopped by the fixture that started it: SIGTERM, then
SIGKILL after a bound. A :class:`Stack` is one application as the operator would run it: interface
processes and worker processes on the shared Redis Cluster, under a prefix of its own, with the
example's sqlite database copied from a template prepared once per session.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.eventually import eventually

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BIN = Path(sys.executable).parent
STOP_SECONDS = 20.0
READY_SECONDS = 90.0  # two cores shared with six Redis nodes and the other processes of a stack


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
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


def metric(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of the samples ``name`` whose labels include ``labels``, in a /metrics page."""
    wanted = dict(labels or {})
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items()):
                total += float(sample.value)
    return total


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
            url = f"http://127.0.0.1:{self.metrics_port}{path}"
            return httpx.get(url, timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

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
            "CHANNELWORKS_INTERFACE_HOST": "127.0.0.1",
            "CHANNELWORKS_METRICS_HOST": "127.0.0.1",
            "CHANNELWORKS_METRICS_PORT": str(self.metrics_port),
        }
        super().__init__(name, [str(BIN / "channelworks-interface")], full_env, log_dir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


class Worker(Served):
    """A ``channelworks-worker`` process."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path, cwd: Path) -> None:
        self.metrics_port = free_port()
        full_env = {
            **env,
            "CHANNELWORKS_METRICS_HOST": "127.0.0.1",
            "CHANNELWORKS_METRICS_PORT": str(self.metrics_port),
        }
        super().__init__(name, [str(BIN / "channelworks-worker")], full_env, log_dir, cwd)


@dataclass(frozen=True)
class Example:
    """One of the example projects: where it is and how its database is prepared."""

    name: str  # folder under examples/
    settings: str
    database: str  # the sqlite file name in the state folder

    @property
    def folder(self) -> Path:
        return EXAMPLES / self.name


CHAT = Example("chat", "chat.settings", "chat.sqlite3")
LIVEBLOG = Example("liveblog", "liveblog.settings", "liveblog.sqlite3")


def manage(
    example: Example,
    args: Sequence[str],
    env: Mapping[str, str],
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``python manage.py ARGS`` of ``example``; raise with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=example.folder,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done


def prepare_database(example: Example, state_dir: Path) -> Path:
    """Migrate and seed ``example``'s database in ``state_dir``; return the sqlite file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    env = clean_env(CHANNELWORKS_STATE_DIR=str(state_dir), DJANGO_SETTINGS_MODULE=example.settings)
    manage(example, ["migrate", "--verbosity", "0"], env)
    manage(example, ["seed_demo"], env)
    return state_dir / example.database


@dataclass
class Stack:
    """One application: interface and worker processes on one layer (Redis Cluster)."""

    example: Example
    redis_url: str
    log_dir: Path
    state_dir: Path
    settings: str
    prefix: str = field(default_factory=lambda: f"dp{secrets.token_hex(4)}")
    extra_env: dict[str, str] = field(default_factory=dict)
    interfaces: list[Interface] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """What every process of the application gets (the image contract's variables)."""
        defaults = {
            "CHANNELWORKS_APP": self.prefix,
            "CHANNELWORKS_REDIS_MODE": "cluster",
            "CHANNELWORKS_REDIS_URL": self.redis_url,
            "CHANNELWORKS_STATE_DIR": str(self.state_dir),
            "CHANNELWORKS_LOG_FORMAT": "text",
            # Quick stops: tests stop whole stacks; the SIGTERM test sets its own drain times.
            "CHANNELWORKS_INTERFACE_DRAIN_DELAY": "0.2",
            "CHANNELWORKS_INTERFACE_DRAIN_WINDOW": "0.5",
            "CHANNELWORKS_DRAIN_SECONDS": "5",
            "DJANGO_SETTINGS_MODULE": self.settings,
            "PYTHONPATH": os.pathsep.join([str(self.example.folder), str(REPO)]),
        }
        return clean_env(**{**defaults, **self.extra_env, **extra})

    def add_interface(self, wait: bool = True) -> Interface:
        process = Interface(f"interface-{len(self.interfaces) + 1}", self.env(), self.log_dir)
        self.interfaces.append(process)
        if wait:
            self.wait_ready([process])
        return process

    def add_worker(self, wait: bool = True) -> Worker:
        process = Worker(
            f"worker-{len(self.workers) + 1}", self.env(), self.log_dir, self.example.folder
        )
        self.workers.append(process)
        if wait:
            self.wait_ready([process])
        return process

    def wait_ready(self, processes: Iterable[Served] | None = None) -> None:
        waiting = list(processes if processes is not None else self.processes)
        eventually(
            lambda: all(process.ready() for process in waiting),
            timeout=READY_SECONDS,
            interval=0.2,
            message=f"{', '.join(p.name for p in waiting)} ready",
        )

    @property
    def processes(self) -> list[Served]:
        return [*self.interfaces, *self.workers]

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``manage.py ARGS`` in another process of the application (same layer, same DB)."""
        return manage(self.example, args, self.env(**env))

    def worker_metric(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """``name`` summed over the workers still running."""
        return sum(metric(w.metrics(), name, labels) for w in self.workers if w.alive)

    @property
    def title(self) -> str:
        return f"stack {self.prefix}"

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log()[-6000:]}" for p in self.processes)

    def stop(self) -> None:
        for interface in self.interfaces:  # all drain at once; then each is waited for
            interface.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.stop()


def start_stack(
    example: Example,
    template_db: Path,
    redis_url: str,
    root: Path,
    *,
    interfaces: int = 2,
    workers: int = 2,
    settings: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Stack:
    """Start a stack with a copy of ``template_db`` and wait until every process is ready."""
    state_dir = root / "state"
    state_dir.mkdir(parents=True)
    shutil.copy(template_db, state_dir / example.database)
    stack = Stack(
        example=example,
        redis_url=redis_url,
        log_dir=root,
        state_dir=state_dir,
        settings=settings or example.settings,
        extra_env=dict(env or {}),
    )
    try:
        for _ in range(workers):
            stack.add_worker(wait=False)
        for _ in range(interfaces):
            stack.add_interface(wait=False)
        stack.wait_ready()
    except BaseException:
        print(stack.logs())
        stack.stop()
        raise
    return stack


def wait_for_exit(process: Process, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while process.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.alive:
        raise AssertionError(f"{process.name} still running after {timeout}s:\n{process.log()}")
    return int(process.popen.returncode)


class HasLogs(Protocol):
    @property
    def title(self) -> str: ...

    def logs(self) -> str: ...


# What the running test started: their logs go into the report of a failing test (conftest.py).
ACTIVE: list[HasLogs] = []


@contextlib.contextmanager
def running_stack(
    example: Example,
    template_db: Path,
    redis_url: str,
    root: Path,
    **options: object,
) -> Iterator[Stack]:
    """:func:`start_stack` for a ``with`` block: stopped (and its logs forgotten) after it."""
    stack = start_stack(example, template_db, redis_url, root, **options)  # type: ignore[arg-type]
    ACTIVE.append(stack)
    try:
        yield stack
    finally:
        ACTIVE.remove(stack)
        stack.stop()
