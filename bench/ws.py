#!/usr/bin/env python
"""WebSocket data-plane benchmark: Channelworks' split path against an ordinary Channels 4 app.

    .venv/bin/python bench/ws.py            # ~6 min: every figure, ours vs core vs pubsub
    .venv/bin/python bench/ws.py --quick    # ~2.5 min: ours vs core only, fewer, shorter runs
    .venv/bin/python bench/ws.py --help     # subsets (--only, --systems, --bcast-variants), knobs

Everything runs on this machine in one run, against one private ``redis-server`` started here on
a free 127.0.0.1 port (each system under its own key prefix):

- ``ours``    the full split path: ``channelworks-interface`` (Daphne + our forwarding app) ->
              Redis layer -> ``channelworks-worker`` processes running Channels-1-style sync
              consumers (bench/ws_app/cw_project) -> back through the process inbox to the
              interface. One interface process for echo and memory, two for broadcast.
- ``core``    an ordinary Channels 4 app (bench/ws_app/c4_project): Daphne +
              ``AsyncWebsocketConsumer`` + ``channels_redis.core.RedisChannelLayer``. One Daphne
              for echo and memory; broadcast with one Daphne and with two.
- ``pubsub``  the same app on ``channels_redis.pubsub.RedisPubSubChannelLayer``.
- ``centrifugo`` the peer of issue 15: Centrifugo v6.9.1 (one process, memory engine), built from
              its Go module by bench/centrifugo/build.sh; anonymous clients speaking its JSON
              protocol on ``/connection/websocket``, broadcasts published with its HTTP API.

Figures (the load generators are separate processes using the ``websockets`` asyncio client):

1. echo latency p50/p99 with 100 and 1,000 concurrent connections: each connection sends a
   ~100-byte text frame, waits for its echo, repeats (bounded by time and count);
2. echo throughput (round trips/s) at 1,000 connections, from the same runs;
3. one broadcast to 1,000 and 5,000 sockets: a member sends one frame on ``/broadcast/<group>/``,
   its consumer sends it to the group; time from that send until the last socket has it;
4. memory per idle connection in the interface process: RSS delta (psutil) after opening N idle
   sockets, divided by N, on fresh server processes.

Prints a table with ratios and PASS/FAIL against issue 3's targets. Exit code 0 unless the
benchmark itself crashed (a missed target is a result, not an error). See bench/README.md.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import queue
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _servers  # noqa: E402
from _machine import LoadSampler, load, package_version  # noqa: E402

BIN = Path(sys.executable).parent
CTX = mp.get_context("forkserver")
CTX.set_forkserver_preload(["websockets.asyncio.client"])
HOST = "127.0.0.1"
PAD = "x" * 80  # echo frames are "<conn>:<seq>:" + PAD, about 100 bytes
FD_LIMIT = 20_000
OPEN_CONCURRENCY = 24  # handshakes in flight per client process (Twisted's listen backlog is 50)
CLOSE_CONCURRENCY = 200
STARTUP_TIMEOUT = 120.0  # the machine may be busy: Django + Daphne imports take a while
SETTLE_CPU = 0.10  # a server is quiet when it uses < 10% of a core ...
SETTLE_WINDOW = 0.5  # ... over this window
SETTLE_MAX = 20.0
SYSTEMS = ("ours", "core", "pubsub", "centrifugo")
CENTRIFUGO_BUILD = HERE / "centrifugo" / "build.sh"


@dataclass(frozen=True)
class Settings:
    repeats: int
    echo_conns: tuple[int, ...]
    echo_warm: float  # seconds of untimed echo before the timed runs
    echo_seconds: dict[int, float]  # timed seconds per run, per connection count
    echo_max_per_conn: int  # bound on round trips per connection per run
    bcast_sizes: tuple[int, ...]
    bcast_repeats: int  # timed broadcasts at the first size
    bcast_repeats_large: int  # ... and at the larger sizes
    bcast_variants: tuple[str, ...]  # ours, core (1 Daphne), core2 (2 Daphnes), pubsub (2)
    systems: tuple[str, ...]
    mem_sockets: int
    client_procs: int


FULL = Settings(
    repeats=5,
    echo_conns=(100, 1000),
    echo_warm=1.0,
    echo_seconds={100: 1.5, 1000: 2.0},
    echo_max_per_conn=5000,
    bcast_sizes=(1000, 5000),
    bcast_repeats=7,
    bcast_repeats_large=3,
    bcast_variants=("ours", "core", "core2", "pubsub", "centrifugo"),
    systems=SYSTEMS,
    mem_sockets=1000,
    client_procs=2,
)
QUICK = Settings(
    repeats=2,
    echo_conns=(100, 1000),
    echo_warm=0.5,
    echo_seconds={100: 1.0, 1000: 1.5},
    echo_max_per_conn=5000,
    bcast_sizes=(1000, 5000),
    bcast_repeats=3,
    bcast_repeats_large=2,
    bcast_variants=("ours", "core2", "centrifugo"),
    systems=("ours", "core", "centrifugo"),
    mem_sockets=500,
    client_procs=2,
)


class BenchError(RuntimeError):
    """A figure could not be measured (a process died, sockets did not open, messages lost...)."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def percentile(ordered: Sequence[float], pct: float) -> float:
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FD_LIMIT if hard == resource.RLIM_INFINITY else min(FD_LIMIT, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# -- server processes --------------------------------------------------------------------------


class Server:
    """One server process (interface, worker or Daphne), its log file and its readiness check."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        logdir: Path,
        port: int | None = None,
        probe_port: int | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.port = port  # WebSocket port (None for workers)
        self.probe_port = probe_port  # /readyz port (None for Daphne: it listens once loaded)
        self.log_path = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log_file = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps writing to it
        self.proc = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_fd_limit,
            start_new_session=True,  # a Ctrl-C of the bench reaches us, not the servers
        )
        log_file.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, path: str) -> str:
        return f"ws://{HOST}:{self.port}{path}"

    def is_ready(self) -> bool:
        self.check_alive()
        if self.probe_port is not None:
            try:
                with urllib.request.urlopen(
                    f"http://{HOST}:{self.probe_port}/readyz", timeout=1
                ) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False
        try:
            with socket.create_connection((HOST, self.port or 0), timeout=1):
                return True
        except OSError:
            return False

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(
                f"{self.name} exited with code {self.proc.returncode}; log tail:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def metrics(self) -> str:
        if self.probe_port is None:
            return ""
        try:
            with urllib.request.urlopen(
                f"http://{HOST}:{self.probe_port}/metrics", timeout=2
            ) as answer:
                return str(answer.read().decode())
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()

    def wait_stopped(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(5)


class CentrifugoServer(Server):
    """Centrifugo: its WebSocket endpoint, the channel a socket subscribes to after the ``#``
    (``{n}``: one of its own per socket), and its HTTP API for publishing."""

    def url(self, path: str) -> str:
        if path.startswith("/broadcast/"):
            channel = "bcast-" + path.strip("/").rsplit("/", 1)[-1]
        else:
            channel = "echo-{n}"  # echo and idle sockets: a channel of their own
        return f"ws://{HOST}:{self.port}/connection/websocket#{channel}"


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples ``name{labels...}`` in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            with contextlib.suppress(ValueError):
                total += float(value)
    return total


@dataclass
class System:
    """The server processes of one side: ``echo`` / ``memory`` use ``front[0]``."""

    kind: str  # ours, core, pubsub
    front: list[Server]  # what clients connect to (interfaces or Daphnes)
    back: list[Server] = field(default_factory=list)  # ours: the workers
    uses_redis: bool = True  # Centrifugo runs on its memory engine: Redis' CPU is not its

    @property
    def servers(self) -> list[Server]:
        return self.front + self.back

    def pids(self) -> list[int]:
        return [s.pid for s in self.servers]


def base_env(logdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHANNELWORKS_", "DJANGO_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def build_ours(
    redis_url: str,
    logdir: Path,
    interfaces: int,
    workers: int,
    cw: str,
    capacity: int | None = None,
) -> System:
    app = f"benchws{secrets.token_hex(3)}"
    common = {
        **base_env(logdir),
        "CHANNELWORKS_APP": app,
        "CHANNELWORKS_REDIS_MODE": "standalone",
        "CHANNELWORKS_REDIS_URL": redis_url,
        "CHANNELWORKS_METRICS_HOST": HOST,
        "CHANNELWORKS_LOG_FORMAT": "text",
        "CHANNELWORKS_LOG_LEVEL": "warning",
    }
    if capacity is not None:
        common["CHANNELWORKS_LAYER_CAPACITY"] = str(capacity)
    front = []
    for i in range(interfaces):
        port, probe = free_port(), free_port()
        env = {
            **common,
            "PORT": str(port),
            "CHANNELWORKS_INTERFACE_HOST": HOST,
            "CHANNELWORKS_METRICS_PORT": str(probe),
            "CHANNELWORKS_INTERFACE_DRAIN_DELAY": "0.2",
            "CHANNELWORKS_INTERFACE_DRAIN_WINDOW": "1",
            # No per-socket message rate (default 50/s): a closed-loop echo client sends as fast
            # as answers come back, and neither peer limits a socket's rate.
            "CHANNELWORKS_INTERFACE_MESSAGE_RATE": "0",
        }
        front.append(
            Server(
                f"ours-interface{i}",
                [str(BIN / "channelworks-interface")],
                env,
                logdir,
                port,
                probe,
            )
        )
    back = []
    for i in range(workers):
        probe = free_port()
        env = {
            **common,
            "DJANGO_SETTINGS_MODULE": "ws_app.cw_project.settings",
            "CHANNELWORKS_METRICS_PORT": str(probe),
            "CHANNELWORKS_DRAIN_SECONDS": "2",
        }
        if cw == "async":
            env["CHANNELWORKS_ROUTING"] = "ws_app.cw_project.routing.async_routing"
        back.append(
            Server(f"ours-worker{i}", [str(BIN / "channelworks-worker")], env, logdir, None, probe)
        )
    return System("ours", front, back)


def build_theirs(kind: str, redis_url: str, logdir: Path, daphnes: int) -> System:
    env = {
        **base_env(logdir),
        "DJANGO_SETTINGS_MODULE": "ws_app.c4_project.settings",
        "BENCH_REDIS_URL": redis_url,
        "BENCH_LAYER": kind,
        "BENCH_PREFIX": f"bench{kind}{secrets.token_hex(3)}",
    }
    front = []
    for i in range(daphnes):
        port = free_port()
        command = [
            str(BIN / "daphne"),
            "-v", "0",  # no access log (the interface writes none by default either)
            "-b", HOST,
            "-p", str(port),
            "ws_app.c4_project.asgi:application",
        ]  # fmt: skip
        front.append(Server(f"{kind}-daphne{i}", command, env, logdir, port, None))
    return System(kind, front)


def centrifugo_binary() -> Path:
    """The Centrifugo binary, built into the cache first if it is not there (several minutes
    the first time; bench/centrifugo/build.sh)."""
    path = subprocess.run(
        ["bash", str(CENTRIFUGO_BUILD), "--print-path"], check=True, capture_output=True, text=True
    ).stdout.strip()
    if not os.access(path, os.X_OK):
        log("  building Centrifugo from its Go module (bench/centrifugo/build.sh) ...")
    built = subprocess.run(["bash", str(CENTRIFUGO_BUILD)], capture_output=True, text=True)
    if built.returncode != 0:
        raise BenchError(f"bench/centrifugo/build.sh failed:\n{built.stdout}{built.stderr}")
    return Path(path)


def build_centrifugo(binary: Path, logdir: Path) -> System:
    """One Centrifugo process on the memory engine: anonymous connections may subscribe to and
    publish in any channel, the HTTP API needs no key, no usage reports; its application-level
    pings (default every 25 s, answered by client code) are pushed past the run, as the load
    generators' loops do not answer them."""
    port = free_port()
    config = {
        "http_server": {"address": HOST, "port": port},
        "log": {"level": "error"},
        "usage_stats": {"disabled": True},
        "client": {
            "allow_anonymous_connect_without_token": True,
            "ping_interval": "3600s",
            "pong_timeout": "60s",
        },
        "channel": {
            "without_namespace": {
                "allow_subscribe_for_client": True,
                "allow_subscribe_for_anonymous": True,
                "allow_publish_for_client": True,
                "allow_publish_for_anonymous": True,
            }
        },
        "http_api": {"insecure": True},
    }
    path = logdir / "centrifugo.json"
    path.write_text(json.dumps(config))
    env = {**base_env(logdir), "GOMAXPROCS": str(os.cpu_count() or 2)}
    server = CentrifugoServer("centrifugo", [str(binary), "-c", str(path)], env, logdir, port)
    return System("centrifugo", [server], uses_redis=False)


def _no_redis() -> float | None:
    return None


def redis_of(system: System, redis_cpu: Callable[[], float | None]) -> Callable[[], float | None]:
    """Redis' CPU counts for a system only if it uses Redis."""
    return redis_cpu if system.uses_redis else _no_redis


def start_all(systems: Sequence[System]) -> float:
    began = time.perf_counter()
    servers = [s for system in systems for s in system.servers]
    for server in servers:
        server.start()
    deadline = time.perf_counter() + STARTUP_TIMEOUT
    waiting = list(servers)
    while waiting:
        waiting = [s for s in waiting if not s.is_ready()]
        if waiting and time.perf_counter() > deadline:
            names = ", ".join(s.name for s in waiting)
            raise BenchError(f"not ready after {STARTUP_TIMEOUT:.0f}s: {names}")
        time.sleep(0.2)
    return time.perf_counter() - began


def stop_all(systems: Sequence[System]) -> None:
    servers = [s for system in systems for s in system.servers]
    for server in servers:
        server.stop()
    for server in servers:
        server.wait_stopped(15)


# -- CPU and memory of processes ---------------------------------------------------------------


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time of the processes, to the nanosecond: the scheduler's run time of each thread
    (``/proc/<pid>/task/<tid>/schedstat``; user + system times from psutil count in 10 ms
    ticks, too coarse for one broadcast). Threads that ended are not counted."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
            for tid in tasks:
                with (
                    contextlib.suppress(OSError),
                    open(f"/proc/{pid}/task/{tid}/schedstat") as stat,
                ):
                    total += int(stat.read().split()[0]) / 1e9
        except OSError:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
    return total


def rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def settle(system: System, redis_cpu: Callable[[], float | None]) -> float:
    """Wait until the system's servers (and Redis) are quiet: the previous step is over."""
    redis_cpu = redis_of(system, redis_cpu)
    began = time.perf_counter()
    pids = system.pids()
    while time.perf_counter() - began < SETTLE_MAX:
        before, redis_before = cpu_seconds(pids), redis_cpu()
        time.sleep(SETTLE_WINDOW)
        used = cpu_seconds(pids) - before
        redis_after = redis_cpu()
        if redis_before is not None and redis_after is not None:
            used = max(used / max(1, len(pids)), redis_after - redis_before)
        else:
            used = used / max(1, len(pids))
        if used < SETTLE_CPU * SETTLE_WINDOW:
            break
    return time.perf_counter() - began


# -- the load generator (client processes) -----------------------------------------------------


def client_main(index: int, commands: Any, results: Any) -> None:
    """One load-generator process: holds sockets by label and runs what the parent asks."""
    raise_fd_limit()
    try:
        asyncio.run(_client(index, commands, results))
    except KeyboardInterrupt:
        sys.exit(130)
    except BaseException:
        traceback.print_exc()
        results.put(("crashed", index, traceback.format_exc()))
        sys.exit(1)


async def _client(index: int, commands: Any, results: Any) -> None:
    from websockets.asyncio.client import connect

    perf = time.perf_counter
    sockets: dict[str, list[Any]] = {}
    armed: dict[str, asyncio.Task[None]] = {}
    # Centrifugo sockets: the channel each subscribed to, and the server's HTTP API address.
    centrifugo: dict[Any, tuple[str, str]] = {}
    opened_count = 0

    async def open_one(url: str, limit: asyncio.Semaphore) -> Any:
        nonlocal opened_count
        base, _, channel = url.partition("#")
        async with limit:
            ws = await connect(
                base,
                compression=None,
                ping_interval=None,  # the servers ping; no client pings in the measurements
                open_timeout=60,
                close_timeout=5,
                max_size=2**20,
            )
            if channel:  # Centrifugo: connect anonymously, subscribe, wait for the answer
                opened_count += 1
                channel = channel.replace("{n}", f"{index}-{opened_count}")
                subscribe = {"id": 2, "subscribe": {"channel": channel}}
                await ws.send('{"id":1,"connect":{}}\n' + json.dumps(subscribe))
                answer = ""
                while '"id":2,' not in answer:
                    answer = await asyncio.wait_for(ws.recv(), 60)
                if '"error"' in answer:
                    raise BenchError(f"Centrifugo refused the subscription: {answer}")
                host = base.split("/")[2]
                centrifugo[ws] = (channel, f"http://{host}/api/publish")
            return ws

    async def do_open(label: str, urls: list[str], count: int) -> None:
        limit = asyncio.Semaphore(OPEN_CONCURRENCY)
        began = perf()
        targets = [urls[(index + i) % len(urls)] for i in range(count)]
        opened = await asyncio.gather(
            *(open_one(u, limit) for u in targets), return_exceptions=True
        )
        good = [ws for ws in opened if not isinstance(ws, BaseException)]
        bad = [e for e in opened if isinstance(e, BaseException)]
        sockets.setdefault(label, []).extend(good)
        first = f"{type(bad[0]).__name__}: {bad[0]}" if bad else ""
        results.put(("opened", index, len(good), len(bad), perf() - began, first))

    async def do_close(label: str) -> None:
        task = armed.pop(label, None)
        if task is not None:
            task.cancel()
        limit = asyncio.Semaphore(CLOSE_CONCURRENCY)

        async def close(ws: Any) -> None:
            centrifugo.pop(ws, None)
            async with limit:
                with contextlib.suppress(Exception):
                    await ws.close()

        await asyncio.gather(*(close(ws) for ws in sockets.pop(label, [])))
        results.put(("closed", index))

    async def do_echo(label: str, start_at: float, seconds: float, cap: int) -> None:
        conns = sockets.get(label, [])
        latencies = array.array("d")
        ends: list[float] = []
        errors: list[str] = []
        end_at = start_at + seconds

        async def loop(ws: Any, cid: int) -> None:
            seq = 0
            peer = centrifugo.get(ws)
            while seq < cap and perf() < end_at:
                payload = f"{index}.{cid}:{seq}:{PAD}"
                sent = perf()
                if peer is None:
                    await ws.send(payload)
                    while (await ws.recv()) != payload:
                        pass  # a late echo of an earlier, abandoned run
                else:  # publish in its own channel; its push (with the command's reply) returns
                    publish = {
                        "id": 10 + seq,
                        "publish": {"channel": peer[0], "data": {"p": payload}},
                    }
                    await ws.send(json.dumps(publish))
                    while payload not in (await ws.recv()):
                        pass
                latencies.append(perf() - sent)
                seq += 1
            ends.append(perf())

        await asyncio.sleep(max(0.0, start_at - perf()))
        tasks = [asyncio.ensure_future(loop(ws, cid)) for cid, ws in enumerate(conns)]
        done, stuck = await asyncio.wait(tasks, timeout=seconds + 30)
        for task in stuck:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                errors.append(repr(task.exception()))
        if stuck:
            errors.append(f"{len(stuck)} connections still waiting for an echo 30s after the end")
        results.put(("echo", index, latencies.tobytes(), max(ends, default=perf()), errors))

    async def do_arm(label: str, rep: int) -> None:
        conns = sockets.get(label, [])
        expected = f"b{rep}:{PAD}"
        times = array.array("d", [0.0] * len(conns))

        async def wait_one(ws: Any, i: int) -> None:
            if ws in centrifugo:  # a JSON push that carries the frame's text
                while expected not in (await ws.recv()):
                    pass
            else:
                while (await ws.recv()) != expected:
                    pass
            times[i] = perf()

        async def wait_all() -> None:
            tasks = [asyncio.ensure_future(wait_one(ws, i)) for i, ws in enumerate(conns)]
            results.put(("armed", index))
            _, late = await asyncio.wait(tasks, timeout=60)
            for task in late:
                task.cancel()
            got = [t for t in times if t > 0]
            results.put(("bcast", index, rep, len(got), len(conns), max(got, default=0.0)))

        armed[label] = asyncio.ensure_future(wait_all())

    async def do_trigger(label: str, rep: int) -> None:
        ws = sockets[label][0]
        peer = centrifugo.get(ws)
        started = perf()
        if peer is None:
            await ws.send(f"b{rep}:{PAD}")
        else:
            await http_publish(peer[1], {"channel": peer[0], "data": {"t": f"b{rep}:{PAD}"}})
        results.put(("triggered", index, started))

    async def http_publish(url: str, body: dict[str, Any]) -> None:
        """One POST to Centrifugo's HTTP API (a fresh connection, as a backend would use)."""
        host, _, port = url.split("/")[2].partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        data = json.dumps(body).encode()
        writer.write(
            f"POST /api/publish HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        answer = await reader.read()
        writer.close()
        if b" 200 " not in answer.split(b"\r\n", 1)[0] or b'"error"' in answer:
            raise BenchError(f"Centrifugo's publish API answered {answer[:200]!r}")

    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()
    while True:
        command = await loop.run_in_executor(None, commands.get)
        what = command[0]
        if what == "stop":
            break
        handlers: dict[str, Callable[..., Any]] = {
            "open": do_open,
            "close": do_close,
            "echo": do_echo,
            "arm": do_arm,
            "trigger": do_trigger,
        }
        handler = handlers[what]
        # Commands run as tasks: "trigger" must run while "arm"'s receivers wait.
        task = loop.create_task(handler(*command[1:]))
        running.add(task)
        task.add_done_callback(running.discard)
    for label in list(sockets):
        await do_close(label)


class Clients:
    """The load-generator processes and their queues."""

    def __init__(self, count: int) -> None:
        self.results: Any = CTX.Queue()
        self.stash: list[Any] = []
        self.commands = [CTX.Queue() for _ in range(count)]
        self.procs = [
            CTX.Process(
                target=client_main,
                args=(i, self.commands[i], self.results),
                name=f"client{i}",
                daemon=True,
            )
            for i in range(count)
        ]
        for proc in self.procs:
            proc.start()

    def __len__(self) -> int:
        return len(self.procs)

    def send(self, *command: Any, to: int | None = None) -> None:
        targets = range(len(self.procs)) if to is None else [to]
        for i in targets:
            self.commands[i].put(command)

    def take(self, kind: str, count: int | None = None, timeout: float = 120) -> list[Any]:
        """``count`` answers of ``kind`` (default: one per client); others are kept for later."""
        count = len(self.procs) if count is None else count
        got = [item for item in self.stash if item[0] == kind][:count]
        for item in got:
            self.stash.remove(item)
        deadline = time.perf_counter() + timeout
        while len(got) < count:
            try:
                item = self.results.get(timeout=0.2)
            except queue.Empty:
                for proc in self.procs:
                    if proc.exitcode not in (None, 0):
                        raise BenchError(
                            f"load generator {proc.name} died ({proc.exitcode})"
                        ) from None
                if time.perf_counter() > deadline:
                    raise BenchError(
                        f"timed out after {timeout:.0f}s waiting for '{kind}'"
                    ) from None
                continue
            if item[0] == "crashed":
                raise BenchError(f"load generator {item[1]} crashed:\n{item[2]}")
            if item[0] != kind:
                self.stash.append(item)
                continue
            got.append(item)
        return got

    def open(self, label: str, urls: list[str], total: int, allow_fail: bool = False) -> float:
        """Open ``total`` sockets (split over the clients, round-robin over ``urls``)."""
        shares = split(total, len(self))
        for i, share in enumerate(shares):
            self.send("open", label, urls, share, to=i)
        answers = self.take("opened", timeout=60 + total / 20)
        failed = sum(a[3] for a in answers)
        if failed and not allow_fail:
            first = next(a[5] for a in answers if a[3])
            raise BenchError(f"{failed} of {total} sockets did not open ({first})")
        return float(max(a[4] for a in answers))

    def close(self, label: str) -> None:
        self.send("close", label)
        self.take("closed", timeout=120)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.send("stop")
        for proc in self.procs:
            proc.join(15)
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- figures -----------------------------------------------------------------------------------


@dataclass
class EchoRun:
    p50: float
    p99: float
    rate: float  # round trips per second, all connections together
    count: int
    cpu_us: float | None  # server-side CPU (front + back + redis) per round trip
    parts_us: dict[str, float]  # the same, per part: front, back (ours' workers), redis
    client_cpu_us: float  # the load generators' CPU per round trip
    full: int | None = None  # ours: sends the layer refused as channel full during the run


@dataclass
class EchoResult:
    runs: list[EchoRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def median(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.runs if getattr(r, name) is not None]
        return statistics.median(values) if values else None


def channel_full(system: System) -> int | None:
    """Ours: sends refused as channel full so far, over the workers and interfaces."""
    if not system.back:
        return None
    return int(
        sum(
            metric_sum(x.metrics(), "channelworks_layer_channel_full_total") for x in system.servers
        )
    )


def echo_run(
    clients: Clients,
    system: System,
    label: str,
    seconds: float,
    cap: int,
    redis_cpu: Callable[[], float | None],
) -> EchoRun:
    redis_cpu = redis_of(system, redis_cpu)
    pids = system.pids()
    client_pids = [p.pid for p in clients.procs if p.pid is not None]
    full_before = channel_full(system)
    client_before = cpu_seconds(client_pids)
    front_pids, back_pids = [x.pid for x in system.front], [x.pid for x in system.back]
    front_before, back_before = cpu_seconds(front_pids), cpu_seconds(back_pids)
    cpu_before, redis_before = cpu_seconds(pids), redis_cpu()
    start_at = time.perf_counter() + 0.3
    clients.send("echo", label, start_at, seconds, cap)
    answers = clients.take("echo", timeout=seconds + 60)
    cpu = cpu_seconds(pids) - cpu_before
    parts = {
        "front": cpu_seconds(front_pids) - front_before,
        "back": cpu_seconds(back_pids) - back_before,
    }
    client_cpu = cpu_seconds(client_pids) - client_before
    full_after = channel_full(system)
    redis_after = redis_cpu()
    if redis_before is not None and redis_after is not None:
        cpu += redis_after - redis_before
        parts["redis"] = redis_after - redis_before
    errors = [e for a in answers for e in a[4]]
    if errors:
        raise BenchError(f"echo on {system.kind}: {errors[:3]}")
    samples = array.array("d")
    for a in answers:
        samples.frombytes(a[2])
    if not samples:
        raise BenchError(f"echo on {system.kind}: no round trip completed")
    ordered = sorted(samples)
    elapsed = max(a[3] for a in answers) - start_at
    for server in system.servers:
        server.check_alive()
    return EchoRun(
        p50=percentile(ordered, 50),
        p99=percentile(ordered, 99),
        rate=len(ordered) / elapsed,
        count=len(ordered),
        cpu_us=cpu / len(ordered) * 1e6,
        parts_us={k: v / len(ordered) * 1e6 for k, v in parts.items()},
        client_cpu_us=client_cpu / len(ordered) * 1e6,
        full=None if full_before is None or full_after is None else full_after - full_before,
    )


def run_echo(
    clients: Clients,
    systems: list[System],
    s: Settings,
    redis_cpu: Callable[[], float | None],
    errors: list[str],
) -> dict[int, dict[str, EchoResult]]:
    """Per connection count: every system's sockets are opened and warmed up, then the timed
    runs go system after system, repeat after repeat (the others' sockets idle meanwhile)."""
    out: dict[int, dict[str, EchoResult]] = {}
    for conns in s.echo_conns:
        results = {system.kind: EchoResult() for system in systems}
        alive: list[System] = []

        def failed(
            system: System,
            error: BenchError,
            conns: int = conns,
            results: dict[str, EchoResult] = results,
            alive: list[System] = alive,
        ) -> None:
            results[system.kind].errors.append(str(error))
            errors.append(f"echo {conns} {system.kind}: {error}")
            log(f"    echo {conns}: {system.kind} ERROR {error}")
            if system in alive:
                alive.remove(system)

        for system in systems:
            label = f"echo{conns}-{system.kind}"
            try:
                took = clients.open(label, [system.front[0].url("/echo/")], conns)
                settle(system, redis_cpu)
                echo_run(clients, system, label, s.echo_warm, s.echo_max_per_conn, redis_cpu)
                alive.append(system)
                log(f"    echo {conns}: {system.kind} opened in {took:.1f}s, warmed up")
            except BenchError as error:
                failed(system, error)
        for rep in range(s.repeats):
            for system in list(alive):
                label = f"echo{conns}-{system.kind}"
                try:
                    settle(system, redis_cpu)
                    run = echo_run(
                        clients,
                        system,
                        label,
                        s.echo_seconds[conns],
                        s.echo_max_per_conn,
                        redis_cpu,
                    )
                except BenchError as error:
                    failed(system, error)
                    continue
                results[system.kind].runs.append(run)
                log(
                    f"    echo {conns} run {rep + 1}: {system.kind:<6} p50 {run.p50 * 1e3:6.2f} ms"
                    f"  p99 {run.p99 * 1e3:7.2f} ms  {run.rate:7,.0f} round trips/s"
                )
        for system in systems:
            clients.close(f"echo{conns}-{system.kind}")
        out[conns] = results
    return out


@dataclass
class Variant:
    """One broadcast setup: a system, the front processes its sockets spread over, a group."""

    name: str  # column: ours, core, core2, pubsub2
    system: System
    fronts: list[Server]
    group: str

    @property
    def label(self) -> str:
        return f"bcast-{self.group}"

    def urls(self) -> list[str]:
        return [f.url(f"/broadcast/{self.group}/") for f in self.fronts]


@dataclass
class BroadcastResult:
    times: dict[int, list[float]] = field(default_factory=dict)  # sockets -> seconds per rep
    cpu: dict[int, list[float]] = field(default_factory=dict)  # sockets -> server CPU s per rep
    client_cpu: dict[int, list[float]] = field(default_factory=dict)  # load generators' CPU s
    parts: dict[int, list[dict[str, float]]] = field(default_factory=dict)  # front/back/redis
    open_seconds: dict[int, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def median(self, size: int) -> float | None:
        values = self.times.get(size)
        return statistics.median(values) if values else None


class Broadcaster:
    def __init__(self, clients: Clients, redis_cpu: Callable[[], float | None]) -> None:
        self.clients = clients
        self.redis_cpu = redis_cpu
        self.rep = 0

    def once(self, variant: Variant, size: int, result: BroadcastResult | None = None) -> float:
        """One broadcast; seconds from the member's send until the last of ``size`` has it.

        With ``result``, the time and the servers' CPU seconds (fronts, workers, Redis; from the
        trigger until every socket has it) are recorded there."""
        self.rep += 1
        rep, clients = self.rep, self.clients
        redis_cpu = redis_of(variant.system, self.redis_cpu)
        pids = variant.system.pids()
        clients.send("arm", variant.label, rep)
        clients.take("armed", timeout=60)
        time.sleep(0.05)
        client_pids = [p.pid for p in clients.procs if p.pid is not None]
        front_pids = [x.pid for x in variant.system.front]
        back_pids = [x.pid for x in variant.system.back]
        client_before = cpu_seconds(client_pids)
        front_before, back_before = cpu_seconds(front_pids), cpu_seconds(back_pids)
        cpu_before, redis_before = cpu_seconds(pids), redis_cpu()
        clients.send("trigger", variant.label, rep, to=0)
        started = clients.take("triggered", count=1, timeout=30)[0][2]
        answers = clients.take("bcast", timeout=90)
        cpu = cpu_seconds(pids) - cpu_before
        client_cpu = cpu_seconds(client_pids) - client_before
        parts = {
            "front": cpu_seconds(front_pids) - front_before,
            "back": cpu_seconds(back_pids) - back_before,
        }
        redis_after = redis_cpu()
        if redis_before is not None and redis_after is not None:
            cpu += redis_after - redis_before
            parts["redis"] = redis_after - redis_before
        received = sum(a[3] for a in answers)
        if received < size:
            raise BenchError(
                f"broadcast {rep} on {variant.name}: {size - received} of {size} sockets got "
                "nothing within 60s"
            )
        seconds = float(max(a[5] for a in answers) - started)
        if result is not None:
            result.times.setdefault(size, []).append(seconds)
            result.cpu.setdefault(size, []).append(cpu)
            result.client_cpu.setdefault(size, []).append(client_cpu)
            result.parts.setdefault(size, []).append(parts)
        return seconds

    def measure(self, variant: Variant, size: int, repeats: int, result: BroadcastResult) -> None:
        settle(variant.system, self.redis_cpu)
        self.once(variant, size)  # warm-up
        for _ in range(repeats):
            settle(variant.system, self.redis_cpu)
            self.once(variant, size, result)
        times = result.times[size]
        runs = "/".join(f"{t * 1e3:.1f}" for t in times)
        log(
            f"    broadcast {size}: {variant.name:<7} {statistics.median(times) * 1e3:8.1f} ms"
            f"  (runs {runs})"
        )


def run_broadcast(
    clients: Clients,
    variants: list[Variant],
    s: Settings,
    redis_cpu: Callable[[], float | None],
    errors: list[str],
) -> dict[str, BroadcastResult]:
    """At the first size every variant's sockets are open at once and the runs interleave; then
    each variant in turn is topped up to each larger size, measured, and closed."""
    results = {v.name: BroadcastResult() for v in variants}
    caster = Broadcaster(clients, redis_cpu)
    alive = list(variants)
    opened = {v.name: 0 for v in variants}

    def failed(variant: Variant, size: int, error: BenchError) -> None:
        results[variant.name].errors.append(str(error))
        errors.append(f"broadcast {size} {variant.name}: {error}")
        log(f"    broadcast {size}: {variant.name} ERROR {error}")
        if variant in alive:
            alive.remove(variant)
        clients.close(variant.label)

    def top_up(variant: Variant, size: int) -> None:
        took = clients.open(variant.label, variant.urls(), size - opened[variant.name])
        opened[variant.name] = size
        results[variant.name].open_seconds[size] = took
        log(f"    broadcast {size}: {variant.name} has {size} sockets ({took:.1f}s to open)")

    first, *rest = s.bcast_sizes
    for variant in list(alive):
        try:
            top_up(variant, first)
            settle(variant.system, redis_cpu)
            caster.once(variant, first)  # warm-up
        except BenchError as error:
            failed(variant, first, error)
    for _ in range(s.bcast_repeats):
        for variant in list(alive):
            try:
                settle(variant.system, redis_cpu)
                caster.once(variant, first, results[variant.name])
            except BenchError as error:
                failed(variant, first, error)
    for variant in alive:
        times = results[variant.name].times.get(first, [])
        runs = "/".join(f"{t * 1e3:.1f}" for t in times)
        log(f"    broadcast {first}: {variant.name:<7} runs {runs} ms")
    for variant in list(alive):
        for size in rest:
            try:
                top_up(variant, size)
                caster.measure(variant, size, s.bcast_repeats_large, results[variant.name])
            except BenchError as error:
                failed(variant, size, error)
                break
        clients.close(variant.label)
        settle(variant.system, redis_cpu)
    return results


@dataclass
class MemoryResult:
    per_socket: float | None = None  # bytes of RSS per idle socket, front process
    sockets: int = 0
    before: int = 0
    after: int = 0
    back_per_socket: float | None = None  # ours: workers' RSS delta per socket (summed)
    error: str | None = None


def run_memory(
    clients: Clients,
    systems: list[System],
    s: Settings,
    redis_cpu: Callable[[], float | None],
    errors: list[str],
) -> dict[str, MemoryResult]:
    """On fresh processes: a warm-up (100 sockets echo, then close), then RSS before and after
    opening N idle sockets on the system's first front process."""
    out: dict[str, MemoryResult] = {}
    for system in systems:
        result = out[system.kind] = MemoryResult(sockets=s.mem_sockets)
        label = f"mem-{system.kind}"
        front = system.front[0]
        try:
            clients.open(label, [front.url("/echo/")], 100)
            echo_run(clients, system, label, 0.5, 50, redis_cpu)
            clients.close(label)
            settle(system, redis_cpu)
            time.sleep(0.5)
            result.before = int(statistics.median(rss(front.pid) for _ in range(3)))
            back_before = sum(rss(w.pid) for w in system.back)
            clients.open(label, [front.url("/echo/")], s.mem_sockets)
            time.sleep(1.0)
            settle(system, redis_cpu)
            result.after = int(statistics.median(rss(front.pid) for _ in range(3)))
            result.per_socket = (result.after - result.before) / s.mem_sockets
            if system.back:
                back_after = sum(rss(w.pid) for w in system.back)
                result.back_per_socket = (back_after - back_before) / s.mem_sockets
            log(
                f"    memory: {system.kind:<6} {front.name} RSS {result.before / 2**20:.1f} -> "
                f"{result.after / 2**20:.1f} MiB with {s.mem_sockets} idle sockets: "
                f"{result.per_socket / 1024:.1f} KiB each"
            )
        except BenchError as error:
            result.error = str(error)
            errors.append(f"memory {system.kind}: {error}")
            log(f"    memory: {system.kind} ERROR {error}")
        finally:
            clients.close(label)
    return out


# -- the report --------------------------------------------------------------------------------

COLUMNS = ("ours", "core", "core2", "pubsub", "centrifugo")
HEADERS = {
    "ours": "ours",
    "core": "core",
    "core2": "core x2",
    "pubsub": "pubsub",
    "centrifugo": "centrifugo",
}


@dataclass
class Row:
    figure: str
    unit: str  # "ms", "rt/s", "KiB"
    values: dict[str, float | None]
    verdicts: list[tuple[str, bool | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ratio(self, other: str = "core") -> float | None:
        ours, theirs = self.values.get("ours"), self.values.get(other)
        if ours is None or not theirs:
            return None
        return ours / theirs


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "rt/s":
        return f"{value:,.0f}"
    if unit == "KiB":
        return f"{value:.1f}"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def verdict_at_most(row: Row, other: str, limit: float, what: str) -> None:
    ratio = row.ratio(other)
    if ratio is None:
        row.verdicts.append((f"n/a ({what})", None))
    else:
        ok = ratio <= limit
        row.verdicts.append((f"{'PASS' if ok else 'FAIL'} ({what}: {ratio:.3f}x)", ok))


def verdict_below(row: Row, value: float | None, limit: float, what: str) -> None:
    """An absolute target (issue 15): ``value`` <= ``limit``."""
    if value is None:
        row.verdicts.append((f"n/a ({what})", None))
    else:
        ok = value <= limit
        row.verdicts.append((f"{'PASS' if ok else 'FAIL'} ({what}: {value:.1f})", ok))


def verdict_at_least(row: Row, other: str, limit: float, what: str) -> None:
    ratio = row.ratio(other)
    if ratio is None:
        row.verdicts.append((f"n/a ({what})", None))
    else:
        ok = ratio >= limit
        row.verdicts.append((f"{'PASS' if ok else 'FAIL'} ({what}: {ratio:.3f}x)", ok))


def render(rows: list[Row]) -> str:
    head = (
        f"{'figure':<46} {'unit':>5} "
        + " ".join(f"{HEADERS[c]:>10}" for c in COLUMNS)
        + f" {'ours/core':>9}  verdict"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        ratio = row.ratio()
        verdict = "; ".join(text for text, _ in row.verdicts) or "(no target)"
        lines.append(
            f"{row.figure:<46} {row.unit:>5} "
            + " ".join(f"{fmt(row.values.get(c), row.unit):>10}" for c in COLUMNS)
            + f" {('-' if ratio is None else f'{ratio:.2f}x'):>9}  {verdict}"
        )
        lines.extend(f"      {note}" for note in row.notes)
    return "\n".join(lines)


def echo_rows(echo: dict[int, dict[str, EchoResult]]) -> list[Row]:
    rows = []
    for conns, results in echo.items():
        for pct in ("p50", "p99"):
            values = {k: (r.median(pct) or 0) * 1e3 or None for k, r in results.items()}
            row = Row(f"1  echo latency {pct}, {conns:,} connections", "ms", values)
            if pct == "p99":
                verdict_at_most(row, "core", 2.0, "ours <= 2x core")
            row.notes.append(
                "runs (ms): "
                + "; ".join(
                    f"{k} " + "/".join(f"{getattr(x, pct) * 1e3:.2f}" for x in r.runs)
                    for k, r in results.items()
                )
            )
            if pct == "p99":
                row.notes.append(
                    "CPU us per round trip, servers (fronts+workers+redis) / load generators: "
                    + "; ".join(
                        f"{k} {r.median('cpu_us') or 0:.0f} / {r.median('client_cpu_us') or 0:.0f}"
                        for k, r in results.items()
                        if r.runs
                    )
                )
                split_up = []
                for kind, r in results.items():
                    if not r.runs:
                        continue
                    parts = {
                        k: statistics.median(x.parts_us.get(k, 0.0) for x in r.runs)
                        for k in ("front", "back", "redis")
                    }
                    if kind == "ours":
                        split_up.append(
                            f"ours interface {parts['front']:.0f} + workers {parts['back']:.0f}"
                            f" + redis {parts['redis']:.0f}"
                        )
                    elif kind == "centrifugo":
                        split_up.append(f"centrifugo {parts['front']:.0f} (one process)")
                    else:
                        split_up.append(
                            f"{kind} daphne {parts['front']:.0f} + redis {parts['redis']:.0f}"
                        )
                row.notes.append("server CPU per round trip by part (us): " + "; ".join(split_up))
                ours_runs = results.get("ours", EchoResult()).runs
                fulls = [x.full for x in ours_runs if x.full]
                if fulls:
                    row.notes.append(
                        "ours: replies refused as channel full (process inbox at capacity) and "
                        "retried 100 ms later, per run: " + "/".join(map(str, fulls))
                    )
            rows.append(row)
    for conns, results in echo.items():
        if conns != max(echo):
            continue
        values = {k: r.median("rate") for k, r in results.items()}
        row = Row(f"2  echo round trips/s, {conns:,} connections", "rt/s", values)
        verdict_at_least(row, "core", 0.8, "ours >= 0.8x core")
        row.notes.append(
            "round trips per server CPU-second (the same figure without the machine's "
            "contention): "
            + "; ".join(
                f"{k} {1e6 / cpu:,.0f}" for k, r in results.items() if (cpu := r.median("cpu_us"))
            )
        )
        row.notes.append(
            "runs (round trips/s): "
            + "; ".join(
                f"{k} " + "/".join(f"{x.rate:,.0f}" for x in r.runs) for k, r in results.items()
            )
        )
        rows.append(row)
    for conns, results in echo.items():
        for kind, r in results.items():
            for error in r.errors:
                rows[-1].notes.append(f"{kind} at {conns}: {error}")
    return rows


def broadcast_rows(bcast: dict[str, BroadcastResult], sizes: Sequence[int]) -> list[Row]:
    rows = []
    for size in sizes:
        values = {k: (r.median(size) or 0) * 1e3 or None for k, r in bcast.items()}
        row = Row(f"3  one broadcast to {size:,} sockets", "ms", values)
        if size == 1000:
            # "ours >= 3x faster": their time / our time >= 3.
            for other, what in (("core", "1 Daphne"), ("core2", "2 Daphnes")):
                if other not in bcast:
                    continue  # not run (--quick runs core on 2 Daphnes only)
                ours, theirs = values.get("ours"), values.get(other)
                if ours and theirs:
                    ok = theirs / ours >= 3
                    row.verdicts.append(
                        (
                            f"{'PASS' if ok else 'FAIL'} (>=3x faster than core on {what}: "
                            f"{theirs / ours:.2f}x)",
                            ok,
                        )
                    )
                else:
                    row.verdicts.append((f"n/a (vs core on {what})", None))
        row.notes.append(
            "runs (ms): "
            + "; ".join(
                f"{k} " + "/".join(f"{t * 1e3:.1f}" for t in r.times.get(size, []))
                for k, r in bcast.items()
            )
        )
        row.notes.append(
            "CPU ms per broadcast, servers (fronts+workers+redis) / load generators: "
            + "; ".join(
                f"{k} {statistics.median(r.cpu[size]) * 1e3:.0f}"
                f" / {statistics.median(r.client_cpu[size]) * 1e3:.0f}"
                for k, r in bcast.items()
                if r.cpu.get(size)
            )
        )
        ours_result = bcast.get("ours")
        if ours_result is not None and ours_result.parts.get(size):
            med = {
                k: statistics.median(p.get(k, 0.0) for p in ours_result.parts[size]) * 1e3
                for k in ("front", "back", "redis")
            }
            row.notes.append(
                f"ours' CPU per broadcast by part (ms): interfaces {med['front']:.0f} + workers "
                f"{med['back']:.0f} + redis {med['redis']:.0f}"
            )
        row.notes.append(
            "time to open the sockets (s): "
            + "; ".join(
                f"{k} {r.open_seconds[size]:.1f}"
                for k, r in bcast.items()
                if size in r.open_seconds
            )
        )
        for kind, r in bcast.items():
            row.notes.extend(f"{kind}: {e}" for e in r.errors if f" {size} " in f" {e} ")
        rows.append(row)
    return rows


def peer_rows(
    echo: dict[int, dict[str, EchoResult]] | None,
    bcast: dict[str, BroadcastResult] | None,
    sizes: Sequence[int],
) -> list[Row]:
    """Issue 15: CPU per operation beside Centrifugo's, and its targets for ours."""
    rows = []
    for size in sizes if bcast else ():
        assert bcast is not None
        values: dict[str, float | None] = {}
        for kind, r in bcast.items():
            if not r.cpu.get(size):
                continue
            if kind == "ours":  # the interfaces' share: the target is on them
                front = statistics.median(p.get("front", 0.0) for p in r.parts[size])
                values[kind] = front / size * 1e6
            else:
                values[kind] = statistics.median(r.cpu[size]) / size * 1e6
        row = Row(f"15 broadcast CPU per socket, {size:,} sockets", "us", values)
        verdict_below(row, values.get("ours"), 15.0, "ours' interfaces <= 15 us")
        row.notes.append(
            "ours: the interface processes' CPU only (workers and Redis add the group send, "
            "once per broadcast); the others: every server process (and Redis for core/pubsub)"
        )
        rows.append(row)
    if echo:
        conns = max(echo)
        results = echo[conns]
        values = {k: r.median("cpu_us") for k, r in results.items()}
        row = Row(f"15 echo server CPU per round trip, {conns:,} conns", "us", values)
        ours = results.get("ours")
        if ours is not None and ours.runs:
            front = statistics.median(x.parts_us.get("front", 0.0) for x in ours.runs)
            back = statistics.median(x.parts_us.get("back", 0.0) for x in ours.runs)
            verdict_below(row, front, 60.0, "ours' interface <= 60 us")
            verdict_below(row, back, 100.0, "ours' workers <= 100 us")
            verdict_at_most(row, "core", 0.5, "ours <= 0.5x core")
        row.notes.append(
            "centrifugo: a client publishes in a channel it subscribed to and waits for the push "
            "(no application code, no Redis); ours: frame -> layer -> sync Channels-1 consumer "
            "-> reply_channel.send -> frame"
        )
        rows.append(row)
    return rows


def memory_row(mem: dict[str, MemoryResult]) -> Row:
    values = {k: (None if r.per_socket is None else r.per_socket / 1024) for k, r in mem.items()}
    sockets = next(iter(mem.values())).sockets if mem else 0
    row = Row(f"4  RSS per idle socket, front process ({sockets:,})", "KiB", values)
    verdict_at_most(row, "core", 1.0, "ours <= core")
    verdict_below(row, values.get("ours"), 16.0, "ours <= 16 KiB, issue 15")
    row.notes.append(
        "front RSS before -> after (MiB): "
        + "; ".join(
            f"{k} {r.before / 2**20:.1f} -> {r.after / 2**20:.1f}"
            for k, r in mem.items()
            if r.per_socket is not None
        )
    )
    ours = mem.get("ours")
    if ours is not None and ours.back_per_socket is not None:
        row.notes.append(
            f"ours' workers together grew {ours.back_per_socket / 1024:.2f} KiB per socket "
            "(not part of the target: the interface process is)"
        )
    row.notes.extend(f"{k}: {r.error}" for k, r in mem.items() if r.error)
    return row


# -- main --------------------------------------------------------------------------------------


def versions() -> str:
    v = package_version
    return (
        f"Python {platform.python_version()}, redis-server {_servers.redis_server_version()}, "
        f"channelworks {v('channelworks')}, daphne {v('daphne')}, channels {v('channels')}, "
        f"channels_redis {v('channels-redis')}, websockets {v('websockets')}, "
        f"{os.cpu_count()} CPUs"
    )


def diagnostics(ours: System | None) -> list[str]:
    """What our processes counted: full channels, consumer errors, refusals."""
    if ours is None:
        return []
    lines = []
    full = sum(metric_sum(w.metrics(), "channelworks_layer_channel_full_total") for w in ours.back)
    errors = sum(
        metric_sum(w.metrics(), "channelworks_worker_messages_total", outcome="error")
        for w in ours.back
    )
    handled = sum(metric_sum(w.metrics(), "channelworks_worker_messages_total") for w in ours.back)
    refusals = sum(
        metric_sum(f.metrics(), "channelworks_interface_refusals_total") for f in ours.front
    )
    lines.append(
        f"ours' counters for the whole run: workers handled {handled:,.0f} messages, "
        f"{errors:,.0f} consumer errors, {full:,.0f} sends refused as channel full; "
        f"interfaces answered {refusals:,.0f} refusals"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Channelworks interface->layer->worker vs Daphne + Channels 4, WebSockets."
    )
    parser.add_argument("--quick", action="store_true", help="1-2 minutes: fewer, shorter runs")
    parser.add_argument("--repeat", type=int, help="timed runs per figure (default 3, quick 2)")
    parser.add_argument(
        "--only", default="memory,echo,broadcast", help="subset of memory,echo,broadcast"
    )
    parser.add_argument(
        "--systems",
        help="subset of ours,core,pubsub,centrifugo (default: all; --quick: ours,core,centrifugo)",
    )
    parser.add_argument(
        "--bcast-variants",
        help="subset of ours,core,core2,pubsub,centrifugo (core: 1 Daphne, core2/pubsub: 2 "
        "Daphnes; default: all; --quick: ours,core2,centrifugo)",
    )
    parser.add_argument(
        "--ours-capacity",
        type=int,
        help="CHANNELWORKS_LAYER_CAPACITY for our interfaces and workers (default: the "
        "layer's default, 100) -- a diagnostic, see bench/README.md",
    )
    parser.add_argument("--workers", type=int, default=2, help="channelworks-worker processes")
    parser.add_argument(
        "--cw-consumers",
        choices=("sync", "async"),
        default="sync",
        help="ours: Channels-1-style sync consumers (default) or the same as async def",
    )
    parser.add_argument("--clients", type=int, help="load-generator processes (default 2)")
    parser.add_argument("--mem-sockets", type=int, help="idle sockets for figure 4")
    parser.add_argument("--bcast-sizes", help="comma-separated broadcast sizes (default 1000,5000)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' log files")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args(argv)

    s = QUICK if args.quick else FULL
    if args.repeat:
        s = replace(
            s, repeats=args.repeat, bcast_repeats=args.repeat, bcast_repeats_large=args.repeat
        )
    if args.clients:
        s = replace(s, client_procs=args.clients)
    if args.mem_sockets:
        s = replace(s, mem_sockets=args.mem_sockets)
    if args.bcast_sizes:
        s = replace(s, bcast_sizes=tuple(int(x) for x in args.bcast_sizes.split(",")))
    if args.systems:
        s = replace(s, systems=tuple(args.systems.split(",")))
    if args.bcast_variants:
        s = replace(s, bcast_variants=tuple(args.bcast_variants.split(",")))
    only = set(args.only.split(","))
    kinds = [k for k in SYSTEMS if k in s.systems]
    raise_fd_limit()

    began = time.perf_counter()
    load_before = load()
    sampler = LoadSampler()
    log(f"WebSocket benchmark ({'quick' if args.quick else 'full'}): {versions()}")
    log(f"load average (1/5/15 min) at start: {load_before}")
    errors: list[str] = []
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    logdir = Path(tempfile.mkdtemp(prefix="channelworks-bench-ws-"))
    systems: list[System] = []
    clients: Clients | None = None
    ours: System | None = None
    interrupted = False

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        with _servers.standalone() as redis:
            try:
                redis_cpu = _redis_cpu(redis)
                log(f"redis-server at {redis.url}; server logs in {logdir}")
                if "ours" in kinds:
                    ours = build_ours(
                        redis.url, logdir, 2, args.workers, args.cw_consumers, args.ours_capacity
                    )
                    systems.append(ours)
                for kind in ("core", "pubsub"):
                    if kind in kinds:
                        systems.append(build_theirs(kind, redis.url, logdir, 2))
                if "centrifugo" in kinds:
                    systems.append(build_centrifugo(centrifugo_binary(), logdir))
                took = start_all(systems)
                count = sum(len(x.servers) for x in systems)
                log(f"  {count} server processes ready in {took:.1f}s")
                clients = Clients(s.client_procs)
                by_kind = {x.kind: x for x in systems}
                if "memory" in only:
                    log(f"  4 memory per idle socket ({s.mem_sockets} sockets)")
                    mem = run_memory(clients, systems, s, redis_cpu, errors)
                    raw["memory"] = mem
                if "echo" in only:
                    log(f"  1+2 echo at {', '.join(map(str, s.echo_conns))} connections")
                    echo = run_echo(clients, systems, s, redis_cpu, errors)
                    raw["echo"] = echo
                    rows.extend(echo_rows(echo))
                if "broadcast" in only:
                    log(f"  3 broadcast to {', '.join(map(str, s.bcast_sizes))} sockets")
                    variants = []
                    if "ours" in by_kind and "ours" in s.bcast_variants:
                        variants.append(
                            Variant("ours", by_kind["ours"], by_kind["ours"].front, "ours")
                        )
                    if "core" in by_kind:
                        core = by_kind["core"]
                        if "core" in s.bcast_variants:
                            variants.append(Variant("core", core, core.front[:1], "core1"))
                        if "core2" in s.bcast_variants:
                            variants.append(Variant("core2", core, core.front, "core2"))
                    if "pubsub" in by_kind and "pubsub" in s.bcast_variants:
                        variants.append(
                            Variant("pubsub", by_kind["pubsub"], by_kind["pubsub"].front, "pubsub2")
                        )
                    if "centrifugo" in by_kind and "centrifugo" in s.bcast_variants:
                        peer = by_kind["centrifugo"]
                        variants.append(Variant("centrifugo", peer, peer.front, "cf"))
                    bcast = run_broadcast(clients, variants, s, redis_cpu, errors)
                    raw["broadcast"] = bcast
                    rows.extend(broadcast_rows(bcast, s.bcast_sizes))
                rows.extend(peer_rows(raw.get("echo"), raw.get("broadcast"), s.bcast_sizes))
                if "memory" in only:
                    rows.append(memory_row(raw["memory"]))
                notes = diagnostics(ours)
            finally:  # servers first, while Redis is still up
                if clients is not None:
                    clients.stop()
                stop_all(systems)
    except KeyboardInterrupt:
        interrupted = True
        notes = []
        log("interrupted; stopping every process")
    finally:
        if not args.keep_logs and not interrupted:
            for path in logdir.glob("*.log"):
                path.unlink()
            with contextlib.suppress(OSError):
                logdir.rmdir()
    if interrupted:
        return 130

    title = "quick" if args.quick else "full"
    print(
        f"WebSocket data-plane benchmark ({title}; medians of {s.repeats} timed echo runs, "
        f"{s.bcast_repeats} broadcasts at {s.bcast_sizes[0]:,} and {s.bcast_repeats_large} "
        f"at larger sizes) -- {versions()}"
    )
    print(
        f"ours: {args.workers} channelworks-worker processes ({args.cw_consumers} consumers); "
        "echo/memory on 1 interface, broadcast over 2; core/pubsub: Daphne + "
        "AsyncWebsocketConsumer; echo/memory on 1 Daphne; 'core' broadcast on 1 Daphne, "
        "'core x2' and 'pubsub' on 2"
    )
    print(
        f"load average (1/5/15 min) before -> after: {load_before} -> {load()}; "
        f"1-min samples during the run: {sampler.stop()}"
    )
    print(
        "ms: lower is better; rt/s (echo round trips per second): higher is better; "
        "ours/core: ours divided by core; us: microseconds of CPU, lower is better; "
        "centrifugo: one process, memory engine, no application code (bench/README.md)"
    )
    print(render(rows))
    verdicts = [ok for row in rows for _, ok in row.verdicts]
    print(
        f"\ntargets met: {verdicts.count(True)} of {len(verdicts)}"
        + (f"; {verdicts.count(None)} not measurable" if None in verdicts else "")
    )
    for note in notes:
        print(note)
    for error in errors:
        print(f"ERROR {error}")
    print(f"run time {time.perf_counter() - began:.0f}s")
    if args.json:
        args.json.write_text(
            json.dumps(
                raw,
                indent=2,
                default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o),
            )
        )
    return 0


def _redis_cpu(server: Any) -> Callable[[], float | None]:
    def read() -> float | None:
        try:
            info = server.cli("INFO", "cpu")
            fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])
        except Exception:
            return None

    return read


if __name__ == "__main__":
    sys.exit(main())
