"""Raw, unformed cluster-enabled ``redis-server`` processes, as the pods of a StatefulSet.

Unlike ``tests.support.redis_servers.RedisClusterNodes`` (a cluster already formed by
``redis-cli``), these nodes start empty and alone, so the operator's own code has to form them.
Each node listens on 127.0.0.1 on a free port with a free cluster-bus port (``cluster-port``, so
MEET must pass the bus port as a pod's announced one would be), keeps nothing on disk, and can be
killed and started again *empty* (a new node id), like a pod that lost its volume.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.processes import free_port

HOST = "127.0.0.1"
NODE_TIMEOUT_MS = 1000
_START_TIMEOUT = 15.0
_PORT_ATTEMPTS = 8


class NodeStartError(RuntimeError):
    """A redis-server did not come up; the message carries the tail of its log."""


def _binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise NodeStartError("redis-server is not installed")
    return path


class RawNode:
    """One cluster-enabled redis-server in its own directory; ports are kept across restarts."""

    def __init__(self, directory: Path, password: str | None) -> None:
        self.directory = directory
        self.password = password
        self.port = 0
        self.bus_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"redis-server {self.address}"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        for _ in range(_PORT_ATTEMPTS):
            self.port, self.bus_port = free_port(), free_port()
            if self.port != self.bus_port and self._launch():
                return
        raise NodeStartError(f"no free ports for redis-server after {_PORT_ATTEMPTS} tries")

    def kill(self) -> None:
        """SIGKILL, as a crashed pod."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def restart_empty(self, new_address: bool = False) -> None:
        """Start again with no data and no nodes.conf (a new node id), on the same ports, or on
        new ones like a pod that comes back with another IP."""
        if self.running:
            raise NodeStartError(f"{self} is still running")
        shutil.rmtree(self.directory)
        if new_address:
            self.start()
        elif not self._launch():
            raise NodeStartError(f"{self}: its port was taken while it was down")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _launch(self) -> bool:
        """Start the process; False when the ports turned out to be taken."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        log.unlink(missing_ok=True)
        args = [
            _binary(),
            "--bind", HOST,
            "--port", str(self.port),
            "--cluster-enabled", "yes",
            "--cluster-port", str(self.bus_port),
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--cluster-replica-validity-factor", "0",
            "--dir", str(self.directory),
            "--logfile", str(log),
            "--save", "",
            "--appendonly", "no",
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                text = log.read_text(errors="replace") if log.exists() else ""
                if "Address already in use" in text:
                    return False
                raise NodeStartError(f"{self} exited:\n{text[-2000:]}")
            if log.exists() and "Ready to accept connections" in log.read_text(errors="replace"):
                return True
            time.sleep(0.02)
        self.kill()
        raise NodeStartError(f"{self} did not start within {_START_TIMEOUT:.0f}s")


class RawNodes:
    """``count`` raw nodes in one temporary directory; ``stop()`` kills them and removes it."""

    def __init__(self, count: int, password: str | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="channelworks-rediscluster-"))
        self.password = password
        self.nodes = [RawNode(self.root / f"pod-{index}", password) for index in range(count)]
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise

    def addresses(self, count: int | None = None) -> list[str | None]:
        """Pod addresses in ordinal order, ``None`` for a node that is down (a pod not ready)."""
        chosen = self.nodes if count is None else self.nodes[:count]
        return [node.address if node.running else None for node in chosen]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)
