"""Real ``redis-server`` processes for tests: one standalone server, or a six-node cluster.

Every server runs from its own temporary directory, listens only on 127.0.0.1 on ports the kernel
reports free at start (parallel test runs never clash; a port taken in the meantime is detected and
another one is picked), keeps nothing on disk (``save ""``, ``appendonly no``), and is stopped, its
directory removed, by ``stop()``, on leaving the ``with`` block, or at interpreter exit.

    with RedisServer(requirepass="s3cret") as server:
        client = redis.Redis.from_url(server.url)

    with RedisClusterNodes() as cluster:          # 3 masters + 3 replicas, formed by redis-cli
        host, port = cluster.kill_master(0)
        cluster.wait_for_failover()               # a replica took over; cluster_state:ok again
        cluster.restart((host, port))             # the old master comes back as a replica

Everything talks to the servers with ``redis-cli`` and parses its raw replies, so these helpers do
not depend on a Redis client library version. When a server does not come up, the error carries the
tail of its log.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.processes import free_port

HOST = "127.0.0.1"
CLUSTER_SLOTS = 16384
NODE_TIMEOUT_MS = 1000
STARTUP_TIMEOUT = 20.0
CLUSTER_TIMEOUT = 60.0

Address = tuple[str, int]

_PORT_ATTEMPTS = 8
_POLL_INTERVAL = 0.05
_LOG_TAIL_LINES = 30
_CLI_TIMEOUT = 5.0
_ERROR_REPLIES = ("ERR", "NOAUTH", "WRONGPASS", "NOPERM", "LOADING", "READONLY", "CLUSTERDOWN")
# What every server gets: loopback only, nothing written to disk, no waiting before a full sync.
_BASE_SETTINGS = {
    "bind": HOST,
    "daemonize": "no",
    "save": '""',
    "appendonly": "no",
    "repl-diskless-sync-delay": "0",
    "loglevel": "notice",
}
# Cluster nodes: quick failure detection, and replicas that always may take over.
_CLUSTER_SETTINGS = {
    "cluster-enabled": "yes",
    "cluster-config-file": "nodes.conf",
    "cluster-node-timeout": str(NODE_TIMEOUT_MS),
    "cluster-replica-validity-factor": "0",
}


class RedisServerError(RuntimeError):
    """A server or cluster could not be started, or did not reach the state waited for."""


class _PortTaken(RedisServerError):
    """Another process bound the port between our check and the server's bind."""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RedisServerError(f"{name} is not installed; run scripts/install-test-deps.sh")
    return path


def _quote(value: str) -> str:
    """A value for redis.conf, double-quoted with the escapes Redis understands."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def _fields(text: str) -> dict[str, str]:
    """``key:value`` lines (INFO, CLUSTER INFO) as a dict; comments and blanks are skipped."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _wait(condition: Callable[[], str | None], timeout: float, what: str) -> None:
    """Poll ``condition`` (None when satisfied, else what is still missing) until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        problem = condition()
        if problem is None:
            return
        if time.monotonic() >= deadline:
            raise RedisServerError(f"{what} within {timeout:.0f}s: {problem}")
        time.sleep(_POLL_INTERVAL)


@dataclass(frozen=True)
class ClusterNodeView:
    """One line of ``CLUSTER NODES``: how one node sees one member of the cluster."""

    node_id: str
    address: Address
    flags: frozenset[str]
    master_id: str | None
    connected: bool
    slots: tuple[tuple[int, int], ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        return bool(self.flags & {"fail", "fail?"})

    @classmethod
    def parse(cls, line: str) -> ClusterNodeView:
        # <id> <ip:port@cport[,hostname]> <flags> <master|-> <ping> <pong> <epoch> <link> <slot>...
        parts = line.split()
        if len(parts) < 8:
            raise RedisServerError(f"unexpected CLUSTER NODES line: {line!r}")
        host, _, port = parts[1].split("@", 1)[0].rpartition(":")
        slots = []
        for item in parts[8:]:
            if item.startswith("["):  # a slot being imported or migrated
                continue
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        return cls(
            node_id=parts[0],
            address=(host, int(port)),
            flags=frozenset(parts[2].split(",")),
            master_id=None if parts[3] == "-" else parts[3],
            connected=parts[7] == "connected",
            slots=tuple(slots),
        )


class _Node:
    """One redis-server process and its directory; it keeps its ports across restarts."""

    def __init__(
        self,
        directory: Path,
        settings: Mapping[str, str],
        password: str | None,
        bus: bool,
        host: str = HOST,
        launcher: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.password = password
        self.host = host
        self._launcher = tuple(launcher)  # e.g. ip netns exec NAME: where the server runs
        self._settings = dict(settings)
        self._bus = bus
        self.port = 0
        self.bus_port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offsets: dict[Path, int] = {}

    def __repr__(self) -> str:
        return f"redis-server {self.host}:{self.port}"

    @property
    def address(self) -> Address:
        return (self.host, self.port)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float) -> None:
        """Start on free ports, picking others while someone else takes them first."""
        for _ in range(_PORT_ATTEMPTS):
            self.port = free_port()
            self.bus_port = None
            while self._bus and self.bus_port in (None, self.port):
                self.bus_port = free_port()
            try:
                self._launch(timeout)
                return
            except _PortTaken:
                continue
        raise RedisServerError(f"no free port found for redis-server after {_PORT_ATTEMPTS} tries")

    def restart(self, timeout: float) -> None:
        """Start again on the same ports and directory (a cluster node keeps its identity)."""
        if self.running:
            raise RedisServerError(f"{self} is still running")
        self._launch(timeout)

    def terminate(self) -> None:
        """Ask the server to shut down (SIGTERM) without waiting; ``stop()`` waits."""
        if self._process is not None:
            self._process.terminate()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is not gone within 10 s."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: the node dies at once, as on a crashed machine."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def cli(self, *args: str, timeout: float = _CLI_TIMEOUT) -> str:
        """Run one command with redis-cli against this node and return its raw reply."""
        env = dict(os.environ)
        env.pop("REDISCLI_AUTH", None)
        if self.password is not None:
            env["REDISCLI_AUTH"] = self.password
        command = [_binary("redis-cli"), "-h", self.host, "-p", str(self.port), *args]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, env=env, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise RedisServerError(f"{self}: {' '.join(args)} timed out") from error
        reply = done.stdout.strip()
        if done.returncode != 0 or reply.startswith(_ERROR_REPLIES):
            raise RedisServerError(f"{self}: {' '.join(args)} failed: {reply or done.stderr}")
        return reply

    def info(self, section: str) -> dict[str, str]:
        return _fields(self.cli("INFO", section))

    def cluster_nodes(self) -> list[ClusterNodeView]:
        return [ClusterNodeView.parse(line) for line in self.cli("CLUSTER", "NODES").splitlines()]

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The end of the server's log and of what it printed (errors before the log opens)."""
        tails = []
        for path in self._logs():
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    tails.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(tails) or f"(no log in {self.directory})"

    def _logs(self) -> tuple[Path, Path]:
        return (self.directory / "redis.log", self.directory / "stdio.log")

    def failure(self, reason: str) -> str:
        return f"{self} in {self.directory}: {reason}\n{self.log_tail()}"

    def _config(self) -> str:
        settings = {
            **_BASE_SETTINGS,
            "bind": self.host,
            "port": str(self.port),
            "dir": _quote(str(self.directory)),
            "logfile": _quote(str(self.directory / "redis.log")),
            **self._settings,
        }
        if self.host != HOST:  # a namespace's own address, reachable only from this machine
            settings["protected-mode"] = "no"
        if self.bus_port is not None:
            settings["cluster-port"] = str(self.bus_port)
        if self.password is not None:
            settings["requirepass"] = settings["masterauth"] = _quote(self.password)
        return "".join(f"{key} {value}\n" for key, value in settings.items())

    def _launch(self, timeout: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "redis.conf"
        config.write_text(self._config())
        self._log_offsets = {
            path: path.stat().st_size if path.exists() else 0 for path in self._logs()
        }
        with (self.directory / "stdio.log").open("ab") as stdio:
            self._process = subprocess.Popen(
                [*self._launcher, _binary("redis-server"), str(config)],
                stdin=subprocess.DEVNULL,
                stdout=stdio,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        _wait(self._startup_problem, timeout, f"{self} did not start")

    def _startup_problem(self) -> str | None:
        process = self._process
        if process is None:
            raise RedisServerError(self.failure("stopped while starting"))
        code = process.poll()
        if code is not None:
            self._process = None
            if "Address already in use" in self._new_log():
                raise _PortTaken(self.failure("port taken"))
            raise RedisServerError(self.failure(f"exited with code {code} while starting"))
        try:
            pid = self.info("server").get("process_id")
        except RedisServerError as error:
            return str(error)
        if pid != str(process.pid):  # another server answers on this port: ours will exit
            return f"port {self.port} is answered by process {pid}, not {process.pid}"
        return None

    def _new_log(self) -> str:
        """What the server logged since its last launch."""
        return "".join(
            path.read_text(errors="replace")[offset:]
            for path, offset in self._log_offsets.items()
            if path.exists()
        )


class _Servers:
    """A temporary directory of redis-server processes, stopped and removed on exit."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._nodes: list[_Node] = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every server and remove the directory; safe to call twice."""
        atexit.unregister(self.stop)
        for node in self._nodes:
            node.terminate()  # all shut down at once, then each is waited for
        for node in self._nodes:
            node.stop()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def _make_root(self, prefix: str) -> Path:
        if self._root is not None:
            raise RedisServerError("already started")
        self._root = Path(tempfile.mkdtemp(prefix=prefix))
        atexit.register(self.stop)
        return self._root

    def _started(self, start: Callable[[], None]) -> Self:
        try:
            start()
        except BaseException:
            self.stop()
            raise
        return self


class RedisServer(_Servers):
    """One standalone redis-server; ``requirepass`` turns on password authentication."""

    def __init__(
        self,
        requirepass: str | None = None,
        *,
        startup_timeout: float = STARTUP_TIMEOUT,
        host: str = HOST,
        launcher: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.password = requirepass
        self._startup_timeout = startup_timeout
        self._host = host
        self._launcher = tuple(launcher)

    def start(self) -> Self:
        root = self._make_root("channelworks-redis-")
        node = _Node(root, {}, self.password, bus=False, host=self._host, launcher=self._launcher)
        self._nodes = [node]
        return self._started(lambda: node.start(self._startup_timeout))

    @property
    def _node(self) -> _Node:
        if not self._nodes:
            raise RedisServerError("the server is not started")
        return self._nodes[0]

    @property
    def host(self) -> str:
        return self._node.host

    @property
    def port(self) -> int:
        return self._node.port

    @property
    def address(self) -> Address:
        return self._node.address

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0``."""
        return f"redis://{_credentials(self.password)}{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._node.running

    def cli(self, *args: str) -> str:
        """Run one redis-cli command (authenticated if needed) and return its raw reply."""
        return self._node.cli(*args)

    def flushall(self) -> None:
        self._node.cli("FLUSHALL")

    def replace(self) -> None:
        """SIGKILL the server and start a new, empty one on the same address (a pod replaced
        behind a Service: the old connections are gone on the server's side)."""
        self._node.kill()
        self._node.restart(self._startup_timeout)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return self._node.log_tail(lines)


class RedisClusterNodes(_Servers):
    """Real redis-server processes formed into a cluster: by default 3 masters with 1 replica each.

    Formed with ``redis-cli --cluster create ... --cluster-replicas N --cluster-yes``;
    ``start()`` returns once every node reports ``cluster_state:ok``, all agree on who serves the
    16384 slots and every replica is in sync with its master. ``cluster-node-timeout`` is 1000 ms,
    so a killed master is replaced by its replica within a few seconds.

    ``formed=False``: ``start()`` only starts the nodes; ``form()`` makes them a cluster later.
    ``host`` / ``launcher``: the address the nodes bind to and a command prefix they run under
    (an address and ``ip netns exec NAME`` of a network namespace, see ``tests.support.netns``).
    """

    def __init__(
        self,
        *,
        masters: int = 3,
        replicas_per_master: int = 1,
        requirepass: str | None = None,
        startup_timeout: float = CLUSTER_TIMEOUT,
        formed: bool = True,
        host: str = HOST,
        launcher: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self._formed = formed
        self._host = host
        self._launcher = tuple(launcher)
        if masters < 3:
            raise ValueError(f"a Redis cluster needs at least 3 masters, got {masters}")
        if replicas_per_master < 0:
            raise ValueError(f"replicas_per_master must be 0 or more, got {replicas_per_master}")
        self.password = requirepass
        self.master_count = masters
        self.replicas_per_master = replicas_per_master
        self._startup_timeout = startup_timeout

    def start(self) -> Self:
        root = self._make_root("channelworks-redis-cluster-")
        count = self.master_count * (1 + self.replicas_per_master)
        self._nodes = [
            _Node(
                root / f"node-{index}",
                _CLUSTER_SETTINGS,
                self.password,
                bus=True,
                host=self._host,
                launcher=self._launcher,
            )
            for index in range(count)
        ]
        return self._started(self._start_nodes)

    def _start_nodes(self) -> None:
        for node in self._nodes:
            node.start(STARTUP_TIMEOUT)
        if self._formed:
            self.form()

    def form(self) -> None:
        """Make the running nodes one cluster (``redis-cli --cluster create``) and wait until
        it is ready."""
        env = dict(os.environ)
        env.pop("REDISCLI_AUTH", None)
        if self.password is not None:
            env["REDISCLI_AUTH"] = self.password
        command = [
            _binary("redis-cli"),
            "--cluster",
            "create",
            *(f"{node.host}:{node.port}" for node in self._nodes),
            "--cluster-replicas",
            str(self.replicas_per_master),
            "--cluster-yes",
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=self._startup_timeout
            )
        except subprocess.TimeoutExpired as error:
            raise RedisServerError(self._failure("redis-cli --cluster create timed out")) from error
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            raise RedisServerError(self._failure(f"redis-cli --cluster create failed:\n{output}"))
        self.wait_until_ready(self._startup_timeout)

    # -- what the cluster looks like -----------------------------------------------------------

    @property
    def startup_nodes(self) -> list[Address]:
        """Every node's (host, port), for a client's ``startup_nodes``."""
        return [node.address for node in self._nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://[:password@]127.0.0.1:PORT`` of the first node that is running."""
        for node, url in zip(self._nodes, self.urls, strict=True):
            if node.running:
                return url
        raise RedisServerError("no node of the cluster is running")

    @property
    def urls(self) -> list[str]:
        """One ``redis+cluster://`` URL per node: give them all when nodes may be killed."""
        auth = _credentials(self.password)
        return [f"redis+cluster://{auth}{host}:{port}" for host, port in self.startup_nodes]

    @property
    def nodes_running(self) -> list[Address]:
        """The addresses of the nodes whose process runs."""
        return [node.address for node in self._nodes if node.running]

    def masters(self) -> list[Address]:
        """The masters that serve slots, ordered by their first slot (index 0 serves slot 0)."""
        views = sorted(
            (view for view in self._view() if view.is_master and view.slots and not view.failing),
            key=lambda view: view.slots[0][0],
        )
        return [view.address for view in views]

    def replicas(self) -> list[Address]:
        """The replicas that run and are not flagged failing."""
        views = self._view()
        return sorted(view.address for view in views if "slave" in view.flags and not view.failing)

    def cluster_info(self, address: Address) -> dict[str, str]:
        """``CLUSTER INFO`` of one node, as a dict (``cluster_state``, ``cluster_slots_ok``...)."""
        return _fields(self._node(address).cli("CLUSTER", "INFO"))

    def info(self, address: Address, section: str) -> dict[str, str]:
        """``INFO <section>`` of one node, as a dict."""
        return self._node(address).info(section)

    def cli(self, address: Address, *args: str) -> str:
        """Run one redis-cli command against one node and return its raw reply."""
        return self._node(address).cli(*args)

    # -- acting on it --------------------------------------------------------------------------

    def flushall(self) -> None:
        """FLUSHALL on every master (replicas follow)."""
        for address in self.masters():
            self._node(address).cli("FLUSHALL")

    def kill_master(self, index: int) -> Address:
        """SIGKILL the master at ``index`` of ``masters()``; return its address."""
        address = self.masters()[index]
        self._node(address).kill()
        return address

    def kill(self, address: Address) -> None:
        """SIGKILL any node."""
        self._node(address).kill()

    def wait_for_failover(self, timeout: float = 30.0) -> list[Address]:
        """Wait until running nodes serve every slot again (a replica promoted) and agree on it,
        all with ``cluster_state:ok``; return the new ``masters()``."""
        _wait(lambda: self._problem(complete=False), timeout, "the cluster did not fail over")
        return self.masters()

    def restart(self, address: Address, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Start a killed node again on its port, with its own ``nodes.conf`` (it rejoins; a
        replaced master comes back as a replica) and wait until the cluster is complete again."""
        self._node(address).restart(STARTUP_TIMEOUT)
        self.wait_until_ready(timeout)

    def wait_until_ready(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Wait until every node runs with ``cluster_state:ok``, all agree on the masters, and
        every master has its replicas, each with ``master_link_status:up``."""
        _wait(lambda: self._problem(complete=True), timeout, "the cluster was not ready")

    # -- internals -----------------------------------------------------------------------------

    def _node(self, address: Address) -> _Node:
        for node in self._nodes:
            if node.address == tuple(address):
                return node
        raise RedisServerError(f"{address} is not a node of this cluster")

    def _view(self) -> list[ClusterNodeView]:
        for node in self._nodes:
            if node.running:
                return node.cluster_nodes()
        raise RedisServerError("no node of the cluster is running")

    def _problem(self, complete: bool) -> str | None:
        """What keeps the cluster from the state waited for, or None."""
        live = [node for node in self._nodes if node.running]
        if complete and len(live) != len(self._nodes):
            return f"{len(self._nodes) - len(live)} node(s) not running"
        live_addresses = {node.address for node in live}
        owners: set[tuple[Address, tuple[tuple[int, int], ...]]] | None = None
        try:
            for node in live:
                state = _fields(node.cli("CLUSTER", "INFO")).get("cluster_state")
                if state != "ok":
                    return f"{node} reports cluster_state:{state}"
                views = node.cluster_nodes()
                seen = {(v.address, v.slots) for v in views if v.is_master and v.slots}
                if owners is not None and seen != owners:
                    return f"{node} does not agree yet on who serves the slots"
                owners = seen
                if complete and len(views) != len(self._nodes):
                    return f"{node} knows {len(views)} of {len(self._nodes)} nodes"
            if owners is None:
                return "no node is running"
            if sum(end - start + 1 for _, slots in owners for start, end in slots) != CLUSTER_SLOTS:
                return "the masters do not cover all 16384 slots"
            if len(owners) != self.master_count:
                return f"{len(owners)} masters serve slots, expected {self.master_count}"
            if {address for address, _ in owners} - live_addresses:
                return "a master that is down still serves slots"
            if complete:
                return self._replication_problem(live, {address for address, _ in owners})
            return None
        except RedisServerError as error:
            return str(error)

    def _replication_problem(self, live: list[_Node], masters: set[Address]) -> str | None:
        replicas_of: dict[Address, int] = dict.fromkeys(masters, 0)
        for node in live:
            replication = node.info("replication")
            if replication.get("role") != "slave":
                continue
            if replication.get("master_link_status") != "up":
                return f"{node} is not in sync with its master yet"
            master = (replication.get("master_host", ""), int(replication.get("master_port", 0)))
            if master not in replicas_of:
                return f"{node} replicates {master}, which is not a master"
            replicas_of[master] += 1
        short = {address: n for address, n in replicas_of.items() if n != self.replicas_per_master}
        if short:
            return f"replicas per master {short}, expected {self.replicas_per_master} each"
        return None

    def _failure(self, reason: str) -> str:
        tails = "\n".join(node.log_tail(10) for node in self._nodes)
        return f"redis cluster in {self._root}: {reason}\n{tails}"


def _credentials(password: str | None) -> str:
    return "" if password is None else f":{urllib.parse.quote(password, safe='')}@"
