"""Real applications for the data-plane tests: the examples' interface and worker processes as
the operator would run them, ``manage.py``, and their databases.

A :class:`Stack` is one application: interface processes and worker processes on one layer,
under a prefix of its own, with the example's sqlite database copied from a template prepared
once per session. The process wrappers, free ports and metric reading are tests/support/processes.py
(imported here under their old names, which many tests use).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tests.support.eventually import eventually
from tests.support.processes import BIN as BIN  # re-exported: tests use processes.BIN
from tests.support.processes import (
    Interface,
    Process,
    Served,
    Worker,
    clean_env,
    metric,
)
from tests.support.processes import free_port as free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
READY_SECONDS = 90.0  # two cores shared with six Redis nodes and the other processes of a stack


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
