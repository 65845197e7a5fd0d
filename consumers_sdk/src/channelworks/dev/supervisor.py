"""The ``channelworks dev`` supervisor: starts the processes, prints the URL, reloads, stops.

- In-memory layer (the default): one child process runs the interface server and the workers.
  A code change restarts it; open sockets are closed with 1012 (service restart) and the page
  reconnects.
- Local or Redis layer: one interface process and ``--workers`` worker processes. A code change
  restarts only the workers — the interface holds no project code — so sockets stay open.
- A child that fails (a syntax error in the project) is reported, and restarted on the next
  change; with ``--no-reload`` the run ends with the child's exit code.
- Ctrl-C or SIGTERM: each child gets one SIGTERM (the interface first, so disconnects reach the
  workers), and SIGKILL if it has not exited in time. Children stop by themselves if the
  supervisor is killed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TextIO

from channelworks.dev import serving
from channelworks.dev import watcher as watcher_module
from channelworks.dev.config import DevConfig

SCAN_SECONDS = 1.0
SETTLE_SECONDS = 0.2  # editors write in steps: let a change settle before restarting
READY_SECONDS = 60.0
STOP_SECONDS = 10.0
TICK_SECONDS = 0.2
EXIT_PORT_IN_USE = 1


class Child:
    """One process of the run (``python -m channelworks.dev.child ROLE CONFIG``)."""

    def __init__(
        self, role: str, config: DevConfig, name: str, ready_file: Path | None = None
    ) -> None:
        self.role = role
        self.name = name
        self.ready_file = ready_file  # the child creates it once it listens (interface roles)
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self.reported = False  # its unexpected exit has been told

    @property
    def listening(self) -> bool:
        return self.ready_file is not None and self.ready_file.exists()

    def start(self) -> None:
        config = self._config
        env = {**os.environ, **config.environment(), "PYTHONUNBUFFERED": "1"}
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)
            env[serving.READY_FILE_VARIABLE] = str(self.ready_file)
        paths = [config.project_dir, *filter(None, [env.get("PYTHONPATH")])]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "channelworks.dev.child", self.role, config.to_json()],
            cwd=config.project_dir,
            env=env,
            start_new_session=True,
        )
        self.reported = False

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def exit_code(self) -> int | None:
        """None while running (or never started: see :attr:`started`)."""
        return None if self._process is None else self._process.poll()

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def terminate(self) -> None:
        if self.running and self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> bool:
        """True once exited (killed with SIGKILL if still running after ``timeout``)."""
        if self._process is None:
            return True
        try:
            self._process.wait(max(timeout, 0.0))
            return True
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            self._process.wait()
            return False


def stop_children(children: list[Child], timeout: float = STOP_SECONDS) -> None:
    """SIGTERM each, wait until ``timeout`` for all, SIGKILL the rest."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        child.wait(deadline - time.monotonic())


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on (checked before starting, to fail clearly)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or "0.0.0.0", port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def accepts_connections(host: str, port: int) -> bool:
    target = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


class Supervisor:
    """Runs one ``channelworks dev`` session; :meth:`run` returns the exit code."""

    def __init__(self, config: DevConfig, out: TextIO | None = None) -> None:
        self.config = config
        self.out = out or sys.stdout
        self._stop = threading.Event()
        self._signal: int | None = None
        self._scratch = Path(tempfile.mkdtemp(prefix="channelworks-dev-"))
        ready_file = self._scratch / "listening"
        if config.one_process:
            self.interface = Child("all", config, "server", ready_file)
            self.workers: list[Child] = []
        else:
            self.interface = Child("interface", config, "interface", ready_file)
            self.workers = [
                Child("worker", config, f"worker {n + 1}") for n in range(config.workers)
            ]

    @property
    def children(self) -> list[Child]:
        return [self.interface, *self.workers]

    def say(self, text: str) -> None:
        print(f"channelworks dev: {text}", file=self.out, flush=True)

    def request_stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self._signal = signum
        self._stop.set()

    def run(self) -> int:
        config = self.config
        if not port_is_free(config.host, config.port):
            self.say(
                f"cannot listen on {config.host}:{config.port}: the port is in use "
                "(choose another with --port)"
            )
            return EXIT_PORT_IN_USE
        previous = {
            signum: signal.signal(signum, self.request_stop)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        watcher = watcher_module.Watcher([Path(config.project_dir)]) if config.reload else None
        try:
            self.say(self._describe())
            for child in self.children:
                child.start()
            if self._wait_ready():
                self._banner()
            code = self._loop(watcher)
        finally:
            self._shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            shutil.rmtree(self._scratch, ignore_errors=True)
        return code

    # The main loop ------------------------------------------------------------------------------

    def _loop(self, watcher: watcher_module.Watcher | None) -> int:
        next_scan = time.monotonic() + SCAN_SECONDS
        while not self._stop.wait(TICK_SECONDS):
            failed = self._report_exits()
            if failed is not None and watcher is None:
                return failed
            if watcher is not None and time.monotonic() >= next_scan:
                changed = watcher.changes()
                if changed:
                    time.sleep(SETTLE_SECONDS)
                    changed += watcher.changes()
                    self._reload(changed)
                next_scan = time.monotonic() + SCAN_SECONDS
        return 0

    def _report_exits(self) -> int | None:
        """Tell about children that exited by themselves; return the first such exit code."""
        first: int | None = None
        for child in self.children:
            code = child.exit_code
            if code is None or child.reported or not child.started:
                continue
            child.reported = True
            what = "failed" if code else "stopped"
            hint = "; fix the code and save to restart it" if self.config.reload else ""
            self.say(f"the {child.name} process {what} (exit code {code}){hint}")
            if first is None:
                first = code or 1
        return first

    def _reload(self, changed: list[str]) -> None:
        shown = ", ".join(os.path.relpath(path, self.config.project_dir) for path in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        restarting = [*self.workers] if self.workers else [self.interface]
        if not self.interface.running and self.interface not in restarting:
            restarting.insert(0, self.interface)
        self.say(f"{shown}{more} changed: restarting {', '.join(c.name for c in restarting)}")
        stop_children(restarting)
        for child in restarting:
            child.start()
        if self._wait_ready():
            self.say(f"reloaded; serving at {self.config.url}")

    def _wait_ready(self) -> bool:
        """Wait until our interface listens and takes connections (False if it exited or we
        stop). Its own word counts, not just an open port: another program could hold it."""
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline and not self._stop.is_set():
            if not self.interface.running:
                return False
            if self.interface.listening and accepts_connections(self.config.host, self.config.port):
                return True
            self._stop.wait(0.1)
        if not self._stop.is_set():
            self.say(
                f"the server did not listen on port {self.config.port} within {READY_SECONDS:g}s"
            )
        return False

    def _shutdown(self) -> None:
        if self._signal is not None:
            self.say("stopping")
        stop_children([self.interface])
        stop_children(self.workers)

    # Text ---------------------------------------------------------------------------------------

    def _describe(self) -> str:
        config = self.config
        if config.one_process:
            where = "in-memory layer; interface server and workers in one process"
        else:
            layer = config.layer_settings()
            target = "no Redis" if config.layer == "local" else layer.redacted_url()
            count = f"{config.workers} worker process{'es' if config.workers > 1 else ''}"
            where = f"{config.layer} layer ({target}, prefix {config.app!r}); {count}"
        return f"starting {config.settings_module} from {config.project_dir} ({where})"

    def _banner(self) -> None:
        config = self.config
        lines = [f"serving at {config.url}"]
        if not config.one_process:
            variables = " ".join(
                f"{name}={value}"
                for name, value in config.environment().items()
                if name.startswith("CHANNELWORKS_")
            )
            lines.append(f"other processes reach this layer with {variables}")
        if config.reload:
            lines.append(f"reloading on changes to .py and .html files under {config.project_dir}")
        lines.append("quit with CONTROL-C")
        for line in lines:
            self.say(line)


def run(config: DevConfig) -> int:
    """Run ``channelworks dev`` with ``config`` until Ctrl-C or SIGTERM."""
    return Supervisor(config).run()
