#!/usr/bin/env python
"""Channel-layer benchmark: our RedisChannelLayer against channels_redis, same Redis, one run.

    .venv/bin/python bench/layer.py            # ~3 min: every figure, 3 timed runs each
    .venv/bin/python bench/layer.py --quick    # ~1 min (~2 on a busy machine): 2 shorter runs each

Layers compared (all msgpack, all against the same private redis-server started here):

- ``ours``   channelworks.layers.RedisChannelLayer
- ``core``   channels_redis.core.RedisChannelLayer
- ``pubsub`` channels_redis.pubsub.RedisPubSubChannelLayer

Figures (every role below is its own OS process; see bench/README.md for the method):

1. point-to-point throughput, end to end: 2 producer processes x 2 consumer processes,
   (a) process-specific channels: each consumer receives on one ``new_channel()``; producers
       round-robin over them (all three layers);
   (b) one shared normal channel ``bench.p2p`` both consumers receive from (ours and core; pubsub
       has no shared-queue semantics: every subscriber would get every message).
2. request/reply round trip: requester -> ``bench.rr`` (with its ``reply_channel``) -> responder
   -> reply channel, one at a time; p50 and p99.
3. one ``group_send`` to 100 / 1,000 / 5,000 members held by 4 receiving processes; time from the
   call until the last member of the last process has its message.
4. figure 1 for ours against a six-node Redis Cluster (channels_redis cannot run on a cluster).
6. low-concurrency tail (issue 15): 1, 2 and 4 concurrent senders in one process, each sending
   one message after another with a short random pause, to a process channel received in
   another process; one-way latency p50 and p99 (ours and pubsub).
5. ``redis-benchmark -q -t set,lpush,lpop`` with and without ``-P 16`` on the same server.

Prints a table with ratios and PASS/FAIL against the targets of issue 2. Exit code 0 unless the
benchmark itself crashed (a missed target is a result, not an error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import queue
import secrets
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

import _servers  # noqa: E402
from _floor_layer import FloorLayer  # noqa: E402
from _machine import load, package_version  # noqa: E402

# Children fork from a server process that has imported both libraries once (spawning a fresh
# interpreter per role costs seconds of CPU on a busy 2-core machine).
CTX = mp.get_context("forkserver")
CTX.set_forkserver_preload(
    ["channelworks.layers.redis.layer", "channels_redis.core", "channels_redis.pubsub"]
)
LAYERS = ("ours", "core", "pubsub")
FLOOR = "floor"  # figure 3 only: no layer, see _floor_layer.py
BIG_CAPACITY = 10_000_000  # no ChannelFull anywhere
EXPIRY = 300
PAYLOAD = "x" * 100  # about the size of a small websocket text frame
SHARED_CHANNEL = "bench.p2p"
RR_CHANNEL = "bench.rr"
MAX_ROUNDS = 64
PRODUCERS = 2
CONSUMERS = 2
SEND_CONCURRENCY = 32  # concurrent send() tasks per producer process (like 32 busy sockets)
GROUP_PROCESSES = 4
ADD_CHUNK = 100  # group_add calls in flight at once per receiving process
TAIL_SENDERS = (1, 2, 4)  # figure 6: concurrent senders in one process
TAIL_LAYERS = ("ours", "pubsub")
TAIL_PAUSE = 0.002  # figure 6: each sender waits up to this long (uniform) between sends


class BenchError(RuntimeError):
    """A figure could not be measured (a process died, or messages did not arrive in time)."""


@dataclass(frozen=True)
class Settings:
    repeats: int
    warm_seconds: float
    round_seconds: float
    rr_warm: int
    rr_count: int
    group_sizes: tuple[int, ...]
    group_repeats: int
    bench_requests: int
    tail_count: int = 3000  # figure 6: messages per timed run and sender count


FULL = Settings(
    repeats=3,
    warm_seconds=2.0,
    round_seconds=2.5,
    rr_warm=300,
    rr_count=5000,
    group_sizes=(100, 1000, 5000),
    group_repeats=5,
    bench_requests=100_000,
)
QUICK = Settings(
    repeats=2,
    warm_seconds=1.0,
    round_seconds=1.0,
    rr_warm=100,
    rr_count=500,
    group_sizes=(100, 1000, 5000),
    group_repeats=3,
    bench_requests=20_000,
)


# -- the layers, as each child process builds them ---------------------------------------------


def make_layer(kind: str, hosts: Sequence[str], prefix: str) -> Any:
    if kind == "ours":
        from channelworks.layers import RedisChannelLayer

        return RedisChannelLayer(
            hosts=list(hosts), prefix=prefix, capacity=BIG_CAPACITY, expiry=EXPIRY
        )
    # redis-py 8's default socket_timeout (5 s) equals channels_redis' BZPOPMIN timeout (5 s), so
    # an idle core receive() can die with "Timeout reading from ..."; give it room.
    their_hosts = [{"address": url, "socket_timeout": 30} for url in hosts]
    if kind == "core":
        from channels_redis.core import RedisChannelLayer as CoreLayer

        return CoreLayer(hosts=their_hosts, prefix=prefix, capacity=BIG_CAPACITY, expiry=EXPIRY)
    if kind == "pubsub":
        from channels_redis.pubsub import RedisPubSubChannelLayer

        return RedisPubSubChannelLayer(hosts=their_hosts, prefix=prefix)
    if kind == FLOOR:
        return FloorLayer(hosts[0], prefix)
    raise ValueError(kind)


async def close_layer(kind: str, layer: Any) -> None:
    with contextlib.suppress(Exception):
        if kind in ("ours", FLOOR):
            await layer.close()
        elif kind == "core":
            await layer.close_pools()
        else:
            await layer.flush()  # the pubsub layer's only way to close its connections


def child(main: Callable[[], Any]) -> None:
    """Run a child's coroutine; a crash prints its traceback and exits non-zero."""
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)


async def next_command(commands: Any) -> Any:
    return await asyncio.to_thread(commands.get)


async def until_set(stop: Any, task: asyncio.Task[Any]) -> None:
    """Wait for the parent's stop event; surface a crash of ``task`` at once; then cancel it."""
    while not stop.is_set():
        if task.done():
            task.result()
            return
        await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- 1 and 4: point-to-point throughput --------------------------------------------------------


def p2p_consumer(
    kind: str,
    hosts: list[str],
    prefix: str,
    mode: str,
    counts: Any,
    lasts: Any,
    results: Any,
    stop: Any,
) -> None:
    async def main() -> None:
        layer = make_layer(kind, hosts, prefix)
        channel = await layer.new_channel() if mode == "specific" else SHARED_CHANNEL

        async def consume() -> None:
            perf = time.perf_counter
            while True:
                message = await layer.receive(channel)
                index = message["r"]
                counts[index] += 1
                lasts[index] = perf()

        task = asyncio.get_running_loop().create_task(consume())
        await asyncio.sleep(0.1)  # the first receive() is under way (pubsub: subscribed)
        results.put(("ready", channel))
        await until_set(stop, task)
        await close_layer(kind, layer)

    child(main)


def p2p_producer(
    kind: str, hosts: list[str], prefix: str, targets: list[str], commands: Any, results: Any
) -> None:
    async def main() -> None:
        layer = make_layer(kind, hosts, prefix)
        results.put(("producer",))

        async def sender(offset: int, count: int, index: int) -> None:
            for n in range(count):
                target = targets[(offset + n) % len(targets)]
                await layer.send(target, {"type": "bench.message", "r": index, "text": PAYLOAD})

        while True:
            command = await next_command(commands)
            if command[0] == "stop":
                break
            _, index, count = command
            shares = split(count, SEND_CONCURRENCY)
            await asyncio.gather(*(sender(k, n, index) for k, n in enumerate(shares) if n))
            results.put(("sent", index))
        await close_layer(kind, layer)

    child(main)


@dataclass
class Throughput:
    rates: list[float]
    messages: int
    shares: list[float] = field(default_factory=list)  # fraction each consumer received
    extra: int = 0  # messages received more than once
    # CPU seconds per message, per timed run: producer processes, consumer processes, Redis
    cpu: list[tuple[float, float, float | None]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def cpu_text(self) -> str:
        if not self.cpu:
            return ""
        parts = []
        for label, i in (("producers", 0), ("consumers", 1), ("redis", 2)):
            values = [c[i] for c in self.cpu if c[i] is not None]
            if values:
                parts.append(f"{label} {statistics.median(values) * 1e6:.1f}")
        return "CPU us/msg: " + " + ".join(parts)

    def cpu_total(self) -> float | None:
        """Median CPU seconds per message over every process involved, Redis included."""
        totals = [sum(x for x in c if x is not None) for c in self.cpu]
        return statistics.median(totals) if totals else None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a live process (Linux /proc), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def redis_cpu(*infos: Callable[[], str]) -> Callable[[], float | None]:
    """Total used_cpu_user + used_cpu_sys of some servers, from their ``INFO cpu``."""

    def read() -> float | None:
        total = 0.0
        try:
            for info in infos:
                fields = dict(line.split(":", 1) for line in info().splitlines() if ":" in line)
                total += float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])
        except (KeyError, ValueError, _servers.RedisServerError):
            return None
        return total

    return read


class Team:
    """The processes of one layer for one figure, with their queues; ``close()`` ends them."""

    def __init__(self, kind: str, hosts: list[str], s: Settings) -> None:
        self.kind = kind
        self.hosts = hosts
        self.s = s
        self.prefix = f"bench{secrets.token_hex(3)}"
        self.procs: list[Any] = []
        self.failed: str | None = None
        self.stop = CTX.Event()
        self.commands: list[Any] = []

    def spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        proc = CTX.Process(
            target=target,
            name=f"{self.kind}-{name}",
            daemon=True,
            args=(self.kind, self.hosts, self.prefix, *args),
        )
        proc.start()
        self.procs.append(proc)

    def take(self, results: Any, what: str, timeout: float = 120) -> Any:
        return take(results, what, self.procs, timeout)

    def close(self) -> None:
        for command in self.commands:
            command.put(("stop",))
        self.stop.set()
        finish(self.procs)
        self.procs = []


class P2PTeam(Team):
    """2 consumer processes (each one receive() loop) and 2 producer processes."""

    def __init__(
        self,
        kind: str,
        hosts: list[str],
        s: Settings,
        mode: str,
        server_cpu: Callable[[], float | None],
    ) -> None:
        super().__init__(kind, hosts, s)
        self.mode = mode
        self.server_cpu = server_cpu
        self.cpu: list[tuple[float, float, float | None]] = []
        self.results: Any = CTX.Queue()
        self.counts = [CTX.RawArray("q", MAX_ROUNDS) for _ in range(CONSUMERS)]
        self.lasts = [CTX.RawArray("d", MAX_ROUNDS) for _ in range(CONSUMERS)]
        self.commands = [CTX.Queue() for _ in range(PRODUCERS)]
        self.index = -1
        self.rate = 0.0
        self.total = 0
        self.timed_rounds: list[int] = []
        self.rates: list[float] = []

    def spawn_consumers(self) -> None:
        for i in range(CONSUMERS):
            self.spawn(
                p2p_consumer,
                f"consumer{i}",
                self.mode,
                self.counts[i],
                self.lasts[i],
                self.results,
                self.stop,
            )

    def spawn_producers(self) -> None:
        targets = [self.take(self.results, "ready")[1] for _ in range(CONSUMERS)]
        if self.mode == "shared":
            targets = [SHARED_CHANNEL]
        for i in range(PRODUCERS):
            self.spawn(p2p_producer, f"producer{i}", targets, self.commands[i], self.results)
        for _ in range(PRODUCERS):
            self.take(self.results, "producer")

    def cpu_now(self) -> tuple[float, float, float | None]:
        """CPU seconds used so far by the producers, the consumers, and Redis."""
        consumers, producers = self.procs[:CONSUMERS], self.procs[CONSUMERS:]
        return (
            sum(process_cpu(p.pid) for p in producers),
            sum(process_cpu(p.pid) for p in consumers),
            self.server_cpu(),
        )

    def run_round(self, total: int, timed: bool = False) -> float:
        self.index += 1
        index = self.index
        if index >= MAX_ROUNDS:
            raise BenchError("too many rounds")
        counts, lasts = self.counts, self.lasts
        cpu_before = self.cpu_now()
        started = time.perf_counter()
        for command, share in zip(self.commands, split(total, PRODUCERS), strict=True):
            command.put(("send", index, share))
        wait_until(
            lambda: sum(c[index] for c in counts) >= total,
            self.procs,
            timeout=60 + 20 * self.s.round_seconds,
            what=lambda: (
                f"{total} messages of round {index} to arrive (got {sum(c[index] for c in counts)})"
            ),
        )
        finished = max(last[index] for last in lasts)
        for _ in range(PRODUCERS):
            self.take(self.results, "sent", 60)
        if timed:
            after = self.cpu_now()
            redis = None
            if after[2] is not None and cpu_before[2] is not None:
                redis = (after[2] - cpu_before[2]) / total
            self.cpu.append(
                ((after[0] - cpu_before[0]) / total, (after[1] - cpu_before[1]) / total, redis)
            )
        return total / (finished - started)

    def warm_up(self) -> None:
        """Connections, leases, subscriptions; also sizes the timed rounds (~round_seconds)."""
        self.rate = self.run_round(500)
        began = time.perf_counter()
        while time.perf_counter() - began < self.s.warm_seconds:
            self.rate = self.run_round(clamp(int(self.rate * 0.5), 500, 200_000))
        self.total = clamp(int(self.rate * self.s.round_seconds), 2000, 1_000_000)

    def timed(self) -> None:
        self.rates.append(self.run_round(self.total, timed=True))
        self.timed_rounds.append(self.index)

    def result(self) -> Throughput:
        received = [sum(c[i] for i in self.timed_rounds) for c in self.counts]
        return Throughput(
            rates=self.rates,
            messages=self.total,
            shares=[r / max(1, sum(received)) for r in received],
            extra=sum(received) - self.total * len(self.timed_rounds),
            cpu=self.cpu,
        )


def attempt(errors: list[str], label: str, team: Team, step: Callable[[], Any]) -> Any:
    """Run one step of a team; a failure takes that team out and is reported, the rest go on."""
    if team.failed:
        return None
    try:
        return step()
    except BenchError as error:
        team.failed = str(error)
        errors.append(f"{label}, {team.kind}: {error}")
        log(f"    {label}, {team.kind}: ERROR {error}")
        team.close()
        return None


def each(errors: list[str], label: str, teams: dict[str, Any], step: str) -> None:
    started = time.perf_counter()
    for team in teams.values():
        attempt(errors, label, team, getattr(team, step))
    log(f"    {label}: {step} {time.perf_counter() - started:.1f}s")


def run_p2p(
    errors: list[str],
    label: str,
    hosts: list[str],
    mode: str,
    kinds: Sequence[str],
    s: Settings,
    server_cpu: Callable[[], float | None],
) -> dict[str, Throughput | str]:
    """Every layer's team runs at once (idle while the others measure); runs interleave."""
    teams = {kind: P2PTeam(kind, hosts, s, mode, server_cpu) for kind in kinds}
    try:
        each(errors, label, teams, "spawn_consumers")
        each(errors, label, teams, "spawn_producers")
        each(errors, label, teams, "warm_up")
        for _ in range(s.repeats):
            each(errors, label, teams, "timed")
        time.sleep(0.3)  # late duplicates show up
        return {
            kind: f"error ({team.failed})" if team.failed else team.result()
            for kind, team in teams.items()
        }
    finally:
        for team in teams.values():
            team.close()


# -- 2: request/reply round trip ---------------------------------------------------------------


def rr_responder(kind: str, hosts: list[str], prefix: str, stop: Any) -> None:
    async def main() -> None:
        layer = make_layer(kind, hosts, prefix)

        async def respond() -> None:
            while True:
                message = await layer.receive(RR_CHANNEL)
                await layer.send(
                    message["reply_channel"], {"type": "bench.reply", "i": message["i"]}
                )

        task = asyncio.get_running_loop().create_task(respond())
        await until_set(stop, task)
        await close_layer(kind, layer)

    child(main)


def rr_requester(kind: str, hosts: list[str], prefix: str, commands: Any, results: Any) -> None:
    async def main() -> None:
        layer = make_layer(kind, hosts, prefix)
        reply = await layer.new_channel()
        perf = time.perf_counter

        async def ask(i: int) -> None:
            await layer.send(RR_CHANNEL, {"type": "bench.request", "reply_channel": reply, "i": i})
            while (await layer.receive(reply))["i"] != i:
                pass  # a late answer to a handshake ping

        # Handshake: the responder may not listen yet (pubsub drops what nobody hears).
        for attempt in range(1, 61):
            try:
                await asyncio.wait_for(ask(-attempt), 1.0)
                break
            except TimeoutError:
                continue
        else:
            raise BenchError(f"{kind}: the responder never answered")
        results.put(("ready",))
        while True:
            command = await next_command(commands)
            if command[0] == "stop":
                break
            _, base, count = command
            samples = []
            for i in range(count):
                started = perf()
                await ask(base + i)
                samples.append(perf() - started)
            results.put(("samples", samples))
        await close_layer(kind, layer)

    child(main)


@dataclass
class RoundTrip:
    p50s: list[float]
    p99s: list[float]
    cpu: list[tuple[float, float | None]] = field(default_factory=list)  # clients, redis per RT

    @property
    def p50(self) -> float:
        return statistics.median(self.p50s)

    @property
    def p99(self) -> float:
        return statistics.median(self.p99s)


class RRTeam(Team):
    """One responder process and one requester process."""

    def __init__(
        self, kind: str, hosts: list[str], s: Settings, server_cpu: Callable[[], float | None]
    ) -> None:
        super().__init__(kind, hosts, s)
        self.server_cpu = server_cpu
        self.results: Any = CTX.Queue()
        self.commands = [CTX.Queue()]
        self.batch = 0
        self.p50s: list[float] = []
        self.p99s: list[float] = []
        self.cpu: list[tuple[float, float | None]] = []

    def start(self) -> None:
        self.spawn(rr_responder, "responder", self.stop)
        self.spawn(rr_requester, "requester", self.commands[0], self.results)

    def _run(self, count: int) -> list[float]:
        self.batch += 1
        self.commands[0].put(("run", self.batch * 1_000_000, count))
        return sorted(self.take(self.results, "samples", 60 + count * 0.1)[1])

    def warm_up(self) -> None:
        self.take(self.results, "ready")
        self._run(self.s.rr_warm)

    def timed(self) -> None:
        clients, redis = sum(process_cpu(p.pid) for p in self.procs), self.server_cpu()
        samples = self._run(self.s.rr_count)
        clients = (sum(process_cpu(p.pid) for p in self.procs) - clients) / len(samples)
        redis_after = self.server_cpu()
        if redis is not None and redis_after is not None:
            redis = (redis_after - redis) / len(samples)
        self.p50s.append(percentile(samples, 50))
        self.p99s.append(percentile(samples, 99))
        self.cpu.append((clients, redis))

    def result(self) -> RoundTrip:
        return RoundTrip(self.p50s, self.p99s, self.cpu)


def run_rr(
    errors: list[str], hosts: list[str], s: Settings, server_cpu: Callable[[], float | None]
) -> dict[str, RoundTrip | str]:
    label = "request/reply"
    teams = {kind: RRTeam(kind, hosts, s, server_cpu) for kind in LAYERS}
    try:
        each(errors, label, teams, "start")
        each(errors, label, teams, "warm_up")
        for _ in range(s.repeats):
            each(errors, label, teams, "timed")
        return {
            kind: f"error ({team.failed})" if team.failed else team.result()
            for kind, team in teams.items()
        }
    finally:
        for team in teams.values():
            team.close()


# -- 6: low-concurrency tail ------------------------------------------------------------------


def tail_receiver(kind: str, hosts: list[str], prefix: str, results: Any, stop: Any) -> None:
    """Receives on one process channel; reports each message's one-way latency in batches."""

    async def main() -> None:
        layer = make_layer(kind, hosts, prefix)
        channel = await layer.new_channel()
        perf = time.perf_counter
        latencies: list[float] = []

        async def receive() -> None:
            while True:
                message = await layer.receive(channel)
                if message["last"]:
                    results.put(("latencies", message["run"], latencies[:]))
                    latencies.clear()
                else:
                    latencies.append(perf() - message["t"])

        task = asyncio.get_running_loop().create_task(receive())
        results.put(("channel", channel))
        await until_set(stop, task)
        await close_layer(kind, layer)

    child(main)


def tail_sender(kind: str, hosts: list[str], prefix: str, commands: Any, results: Any) -> None:
    """On command, ``senders`` tasks send ``count`` messages in all to the channel, each task one
    after another with a random pause (0 to TAIL_PAUSE) between; then one end marker."""

    async def main() -> None:
        import random

        layer = make_layer(kind, hosts, prefix)
        perf = time.perf_counter
        while True:
            command = await next_command(commands)
            if command[0] == "stop":
                break
            _, channel, run, senders, count = command

            async def send(channel: str, share: int) -> None:
                for _ in range(share):
                    await layer.send(
                        channel,
                        {"type": "bench.tail", "t": perf(), "last": False, "text": PAYLOAD},
                    )
                    await asyncio.sleep(random.uniform(0, TAIL_PAUSE))

            await asyncio.gather(*(send(channel, n) for n in split(count, senders)))
            await asyncio.sleep(0.05)  # the end marker after the stragglers
            await layer.send(channel, {"type": "bench.tail", "t": perf(), "last": True, "run": run})
            results.put(("sent", run))
        await close_layer(kind, layer)

    child(main)


@dataclass
class Tail:
    """Per sender count: p50 and p99 (s) of every timed run."""

    p50s: dict[int, list[float]] = field(default_factory=dict)
    p99s: dict[int, list[float]] = field(default_factory=dict)


class TailTeam(Team):
    def __init__(self, kind: str, hosts: list[str], s: Settings) -> None:
        super().__init__(kind, hosts, s)
        self.results: Any = CTX.Queue()  # the sender's answers
        self.received: Any = CTX.Queue()  # the receiver's (apart: take() wants one kind)
        self.commands = [CTX.Queue()]
        self.channel = ""
        self.run = 0
        self.tail = Tail()

    def start(self) -> None:
        self.spawn(tail_receiver, "receiver", self.received, self.stop)
        self.spawn(tail_sender, "sender", self.commands[0], self.results)
        self.channel = self.take(self.received, "channel")[1]

    def once(self, senders: int, count: int) -> list[float]:
        self.run += 1
        self.commands[0].put(("run", self.channel, self.run, senders, count))
        self.take(self.results, "sent", 60 + count * 0.01)
        answer = self.take(self.received, "latencies", 30)
        if answer[1] != self.run or len(answer[2]) != count:
            raise BenchError(f"run {self.run}: {len(answer[2])} of {count} messages arrived")
        return sorted(answer[2])

    def warm_up(self) -> None:
        self.once(2, 300)

    def timed(self, senders: int) -> None:
        samples = self.once(senders, self.s.tail_count)
        self.tail.p50s.setdefault(senders, []).append(percentile(samples, 50))
        self.tail.p99s.setdefault(senders, []).append(percentile(samples, 99))


def run_tail(errors: list[str], hosts: list[str], s: Settings) -> dict[str, Tail | str]:
    label = "tail"
    teams = {kind: TailTeam(kind, hosts, s) for kind in TAIL_LAYERS}
    try:
        each(errors, label, teams, "start")
        each(errors, label, teams, "warm_up")
        for _ in range(s.repeats):
            for senders in TAIL_SENDERS:
                for team in teams.values():  # interleaved, so load from elsewhere hits both
                    attempt(errors, label, team, lambda t=team, n=senders: t.timed(n))
        return {
            kind: f"error ({team.failed})" if team.failed else team.tail
            for kind, team in teams.items()
        }
    finally:
        for team in teams.values():
            team.close()


# -- 3: group send fan-out ---------------------------------------------------------------------


def group_member_process(
    kind: str, hosts: list[str], prefix: str, index: int, commands: Any, results: Any
) -> None:
    async def main() -> None:
        layer = make_layer(kind, hosts, prefix)
        channels: list[str] = []
        waiting: asyncio.Task[Any] | None = None
        perf = time.perf_counter

        async def receive_one(channel: str, rep: int) -> float:
            message = await layer.receive(channel)
            if message.get("rep") != rep:
                raise BenchError(f"{channel} got {message!r} in repetition {rep}")
            return perf()

        armed_cpu = [0.0]

        async def receive_all(rep: int) -> None:
            times = await asyncio.gather(*(receive_one(c, rep) for c in channels))
            # CPU this process spent from "armed" until its last member had the message
            results.put(("done", index, rep, max(times), time.process_time() - armed_cpu[0]))

        while True:
            command = await next_command(commands)
            if command[0] == "stop":
                break
            if command[0] == "setup":
                _, group, count = command
                channels = [await layer.new_channel() for _ in range(count)]
                for start in range(0, count, ADD_CHUNK):
                    await asyncio.gather(
                        *(layer.group_add(group, c) for c in channels[start : start + ADD_CHUNK])
                    )
                results.put(("ready", index))
            elif command[0] == "arm":
                rep = command[1]
                if waiting is not None:
                    if not waiting.done():
                        raise BenchError("armed again before every member received")
                    waiting.result()
                waiting = asyncio.get_running_loop().create_task(receive_all(rep))
                await asyncio.sleep(0.05)  # every receive() is waiting
                armed_cpu[0] = time.process_time()
                results.put(("armed", index))
        await close_layer(kind, layer)

    child(main)


def group_sender(kind: str, hosts: list[str], prefix: str, commands: Any, results: Any) -> None:
    async def main() -> None:
        layer = make_layer(kind, hosts, prefix)
        while True:
            command = await next_command(commands)
            if command[0] == "stop":
                break
            _, group, rep = command
            started = time.perf_counter()
            await layer.group_send(group, {"type": "bench.group", "rep": rep, "text": PAYLOAD})
            results.put(("sent", started, time.perf_counter()))
        await close_layer(kind, layer)

    child(main)


@dataclass
class Fanout:
    times: dict[int, list[float]]  # members -> seconds per repetition
    calls: dict[int, list[float]]  # members -> how long group_send() itself took
    # members -> CPU seconds per member of the 4 receiving processes, per repetition
    member_cpu: dict[int, list[float]] = field(default_factory=dict)

    def cpu_per_member(self, size: int) -> float | None:
        values = self.member_cpu.get(size)
        return statistics.median(values) if values else None

    def median(self, size: int) -> float | None:
        return statistics.median(self.times[size]) if self.times.get(size) else None

    def call(self, size: int) -> float | None:
        return statistics.median(self.calls[size]) if self.calls.get(size) else None


class GroupTeam(Team):
    """4 member processes (one receive() task per member channel) and one sender process."""

    def __init__(self, kind: str, hosts: list[str], s: Settings) -> None:
        super().__init__(kind, hosts, s)
        self.member_results: Any = CTX.Queue()
        self.sender_results: Any = CTX.Queue()
        self.commands = [CTX.Queue() for _ in range(GROUP_PROCESSES + 1)]
        self.size = 0
        self.rep = 0
        self.fanout = Fanout({}, {})

    def start(self) -> None:
        for i in range(GROUP_PROCESSES):
            self.spawn(
                group_member_process, f"members{i}", i, self.commands[i], self.member_results
            )
        self.spawn(group_sender, "sender", self.commands[-1], self.sender_results)

    def setup(self, size: int) -> None:
        self.size = size
        members = self.commands[:GROUP_PROCESSES]
        for command, share in zip(members, split(size, GROUP_PROCESSES), strict=True):
            command.put(("setup", f"bench.group{size}", share))
        for _ in range(GROUP_PROCESSES):
            self.take(self.member_results, "ready")
        self.fanout.times[size], self.fanout.calls[size] = [], []
        self.fanout.member_cpu[size] = []

    def _send(self, record: bool) -> None:
        self.rep += 1
        members = self.commands[:GROUP_PROCESSES]
        for command in members:
            command.put(("arm", self.rep))
        for _ in members:
            self.take(self.member_results, "armed", 60)
        time.sleep(0.05)
        self.commands[-1].put(("send", f"bench.group{self.size}", self.rep))
        _, started, returned = self.take(self.sender_results, "sent", 60)
        done = [self.take(self.member_results, "done", 60) for _ in members]
        cpu = sum(d[4] for d in done)
        if any(d[2] != self.rep for d in done):
            raise BenchError(f"answers of another repetition: {done}")
        if record:
            self.fanout.times[self.size].append(max(d[3] for d in done) - started)
            self.fanout.calls[self.size].append(returned - started)
            self.fanout.member_cpu[self.size].append(cpu / self.size)

    def warm_up(self) -> None:
        self._send(record=False)

    def timed(self) -> None:
        self._send(record=True)


def run_group(errors: list[str], hosts: list[str], s: Settings) -> dict[str, Fanout | str]:
    teams = {kind: GroupTeam(kind, hosts, s) for kind in (*LAYERS, FLOOR)}
    try:
        each(errors, "group send", teams, "start")
        for size in s.group_sizes:
            label = f"group send {size}"
            for team in teams.values():
                attempt(errors, label, team, lambda t=team, n=size: t.setup(n))
            each(errors, label, teams, "warm_up")
            for _ in range(s.group_repeats):
                each(errors, label, teams, "timed")
        return {
            kind: f"error ({team.failed})" if team.failed else team.fanout
            for kind, team in teams.items()
        }
    finally:
        for team in teams.values():
            team.close()


# -- process plumbing --------------------------------------------------------------------------


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def percentile(ordered: Sequence[float], pct: float) -> float:
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def check_alive(procs: Sequence[Any]) -> None:
    for proc in procs:
        if proc.exitcode not in (None, 0):
            raise BenchError(f"process {proc.name} died with exit code {proc.exitcode}")


def wait_until(
    condition: Callable[[], bool], procs: Sequence[Any], timeout: float, what: Callable[[], str]
) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        check_alive(procs)
        if time.perf_counter() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what()}")
        time.sleep(0.001)


def take(results: Any, kind: str, procs: Sequence[Any], timeout: float) -> Any:
    deadline = time.perf_counter() + timeout
    while True:
        try:
            item = results.get(timeout=0.1)
        except queue.Empty:
            check_alive(procs)
            if time.perf_counter() > deadline:
                raise BenchError(f"timed out after {timeout:.0f}s waiting for '{kind}'") from None
            continue
        if item[0] != kind:
            raise BenchError(f"expected '{kind}', got {item!r}")
        return item


def finish(procs: Sequence[Any]) -> None:
    deadline = time.perf_counter() + 10
    for proc in procs:
        if proc.pid is None:
            continue
        proc.join(max(0.1, deadline - time.perf_counter()))
    for proc in procs:
        if proc.pid is not None and proc.is_alive():
            proc.terminate()
            proc.join(5)


# -- the report --------------------------------------------------------------------------------


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Row:
    figure: str
    unit: str  # "msg/s" (higher is better) or "s" (shown in ms, lower is better)
    values: dict[str, float | None]
    targets: dict[str, float] = field(default_factory=dict)  # {"core": 10}: ours >= 10x core
    verdict: str | None = None  # set directly when the target is not a ratio
    notes: list[str] = field(default_factory=list)

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "msg/s"

    def ratio(self, other: str) -> float | None:
        ours, theirs = self.values.get("ours"), self.values.get(other)
        if not ours or not theirs:
            return None
        return ours / theirs if self.higher_is_better else theirs / ours

    def verdicts(self) -> list[tuple[str, bool | None]]:
        if self.verdict is not None:
            return [(self.verdict, self.verdict.startswith("PASS"))]
        out: list[tuple[str, bool | None]] = []
        for other, target in self.targets.items():
            ratio = self.ratio(other)
            if ratio is None:
                out.append((f"n/a (>={target:g}x {other})", None))
            else:
                ok = ratio >= target
                out.append((f"{'PASS' if ok else 'FAIL'} (>={target:g}x {other})", ok))
        return out


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "msg/s":
        return f"{value:,.0f}"
    return f"{value * 1000:.2f}"


def render(rows: list[Row], ceiling: dict[str, dict[str, float]]) -> str:
    head = (
        f"{'figure':<46} {'unit':>5} {'ours':>9} {'core':>9} {'pubsub':>9}"
        f" {'ours/core':>9} {'ours/pubsub':>11}  verdict"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        unit = "ms" if row.unit == "s" else row.unit
        values = " ".join(f"{fmt_value(row.values.get(k), row.unit):>9}" for k in LAYERS)
        ratios = [row.ratio(k) for k in ("core", "pubsub")]
        r_core, r_pub = ("-" if r is None else f"{r:.2f}x" for r in ratios)
        verdict = ", ".join(text for text, _ in row.verdicts())
        line = f"{row.figure:<46} {unit:>5} {values} {r_core:>9} {r_pub:>11}  {verdict}"
        lines.append(line.rstrip())
        lines.extend(f"      {note}" for note in row.notes)
    if ceiling:
        lines.append("")
        lines.append("ceiling: redis-benchmark, same standalone server (50 clients, requests/s)")
        for label, rps in ceiling.items():
            tests = "  ".join(f"{name} {value:>9,.0f}" for name, value in rps.items())
            lines.append(f"    redis-benchmark {label:<26} {tests}")
    return "\n".join(lines)


def throughput_row(figure: str, results: dict[str, Any], targets: dict[str, float]) -> Row:
    row = Row(figure, "msg/s", {}, targets)
    for kind, result in results.items():
        if not isinstance(result, Throughput):
            row.values[kind] = None
            row.notes.append(f"{kind}: {result}")
            continue
        row.values[kind] = result.rate
        runs = "/".join(f"{r:,.0f}" for r in result.rates)
        shares = "/".join(f"{x:.0%}" for x in result.shares)
        extra = f", {result.extra:,} DUPLICATES" if result.extra > 0 else ""
        extra += f", {-result.extra:,} LOST" if result.extra < 0 else ""
        row.notes.append(
            f"{kind}: runs {runs} msg/s ({result.messages:,} msgs/run), "
            f"consumer shares {shares}{extra}; {result.cpu_text()}"
        )
    ours = results.get("ours")
    ours_cpu = ours.cpu_total() if isinstance(ours, Throughput) else None
    if ours_cpu:
        ratios = [
            f"{kind} {their_cpu / ours_cpu:.1f}x"
            for kind, result in results.items()
            if kind != "ours" and isinstance(result, Throughput)
            for their_cpu in [result.cpu_total()]
            if their_cpu
        ]
        if ratios:
            row.notes.append(
                "CPU per message (all processes + Redis), theirs / ours -- less sensitive to "
                "a busy machine than msg/s: " + ", ".join(ratios)
            )
    return row


def rr_rows(rr: dict[str, Any]) -> list[Row]:
    ok = {k: v for k, v in rr.items() if isinstance(v, RoundTrip)}
    rows = []
    for pct in (50, 99):
        values = {k: (getattr(v, f"p{pct}") if k in ok else None) for k, v in rr.items()}
        row = Row(f"2  request/reply round trip p{pct}", "s", values)
        theirs = [v for k, v in values.items() if k != "ours" and v is not None]
        ours = values.get("ours")
        if ours is not None and theirs:
            best = min(theirs)
            row.verdict = (
                f"{'PASS' if ours <= best * 1.05 else 'FAIL'} "
                f"(<= better of core/pubsub, {best * 1000:.2f} ms, +5%)"
            )
        row.notes.append(
            "runs (ms): "
            + "; ".join(
                f"{k} " + "/".join(f"{x * 1000:.2f}" for x in getattr(v, f"p{pct}s"))
                for k, v in ok.items()
            )
        )
        row.notes.extend(f"{k}: {v}" for k, v in rr.items() if k not in ok)
        rows.append(row)
    cpu = []
    for k, v in ok.items():
        clients = statistics.median(c[0] for c in v.cpu) * 1e6
        redis = [c[1] for c in v.cpu if c[1] is not None]
        cpu.append(
            f"{k} {clients:.0f}"
            + (f" + redis {statistics.median(redis) * 1e6:.0f}" if redis else "")
        )
    if cpu:
        rows[-1].notes.append(
            "CPU us per round trip (requester + responder, redis): " + "; ".join(cpu)
        )
    return rows


def tail_rows(tail: dict[str, Any]) -> list[Row]:
    """Issue 15, target 3: ours' one-way p99 at most the pubsub layer's, per sender count."""
    ok = {k: v for k, v in tail.items() if isinstance(v, Tail)}
    rows = []
    for senders in TAIL_SENDERS:
        for pct in (50, 99):
            values: dict[str, float | None] = {
                k: statistics.median(getattr(v, f"p{pct}s")[senders])
                if k in ok and getattr(v, f"p{pct}s").get(senders)
                else None
                for k, v in tail.items()
            }
            row = Row(f"6  one-way p{pct}, {senders} concurrent sender(s)", "s", values)
            ours, pubsub = values.get("ours"), values.get("pubsub")
            if pct == 99 and ours is not None and pubsub is not None:
                row.verdict = f"{'PASS' if ours <= pubsub else 'FAIL'} (<= pubsub, issue 15)"
            row.notes.append(
                "runs (ms): "
                + "; ".join(
                    f"{k} " + "/".join(f"{x * 1000:.2f}" for x in getattr(v, f"p{pct}s")[senders])
                    for k, v in ok.items()
                    if senders in getattr(v, f"p{pct}s")
                )
            )
            rows.append(row)
    rows[-1].notes.extend(f"{k}: {v}" for k, v in tail.items() if k not in ok)
    return rows


def group_rows(fan: dict[str, Any], sizes: Sequence[int]) -> list[Row]:
    rows = []
    for size in sizes:
        values = {k: (v.median(size) if isinstance(v, Fanout) else None) for k, v in fan.items()}
        targets = {"core": 10, "pubsub": 3} if size == 1000 else {}
        row = Row(
            f"3  group send, {size:,} members in {GROUP_PROCESSES} procs", "s", values, targets
        )
        calls = [
            f"{k} {v.call(size) * 1000:.2f}"
            for k, v in fan.items()
            if isinstance(v, Fanout) and v.call(size) is not None
        ]
        row.notes.append("the group_send() call alone (ms): " + ", ".join(calls))
        cpu = [
            f"{k} {per_member * 1e6:.0f}"
            for k, v in fan.items()
            if isinstance(v, Fanout)
            for per_member in [v.cpu_per_member(size)]
            if per_member is not None
        ]
        row.notes.append(
            "CPU of the 4 receiving processes per member, from the send until each had all "
            "its messages (us): " + ", ".join(cpu)
        )
        floor = values.get(FLOOR)
        if floor is not None:
            row.notes.append(
                f"floor, no layer (one list entry per process wakes its waiting receive() tasks, "
                f"_floor_layer.py): {floor * 1000:.2f} ms"
                + "".join(
                    f"; {target:g}x {k} needs <= {theirs * 1000 / target:.2f} ms"
                    for k, target in targets.items()
                    for theirs in [values.get(k)]
                    if theirs
                )
            )
        row.notes.extend(f"{k}: {v}" for k, v in fan.items() if not isinstance(v, Fanout))
        rows.append(row)
    return rows


# -- main --------------------------------------------------------------------------------------


def versions() -> str:
    v = package_version
    return (
        f"Python {platform.python_version()}, redis-server {_servers.redis_server_version()}, "
        f"channelworks {v('channelworks')}, channels_redis {v('channels-redis')}, "
        f"redis-py {v('redis')}, {os.cpu_count()} CPUs"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Our RedisChannelLayer vs channels_redis (core and pubsub), same Redis."
    )
    parser.add_argument("--quick", action="store_true", help="about a minute: fewer, shorter runs")
    parser.add_argument("--repeat", type=int, help="timed runs per figure (default 3, quick 2)")
    parser.add_argument(
        "--only",
        default="p2p,rr,tail,group,cluster,ceiling",
        help="comma-separated subset of p2p,rr,tail,group,cluster,ceiling",
    )
    parser.add_argument("--no-cluster", action="store_true", help="skip the Redis Cluster figure")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    if args.repeat:
        s = Settings(**{**asdict(s), "repeats": args.repeat, "group_repeats": args.repeat})
    only = set(args.only.split(","))
    if args.no_cluster:
        only.discard("cluster")
    errors: list[str] = []
    raw: dict[str, Any] = {}
    rows: list[Row] = []
    ceiling: dict[str, dict[str, float]] = {}
    began = time.perf_counter()
    load_before = load()
    log(f"channel layer benchmark ({'quick' if args.quick else 'full'}): {versions()}")

    p2p: dict[str, dict[str, Any]] = {}
    with _servers.standalone() as server:
        hosts = [server.url]
        server_cpu = redis_cpu(lambda: server.cli("INFO", "cpu"))
        log(f"standalone redis-server at {server.url}")
        if "p2p" in only:
            for mode, kinds in (("specific", LAYERS), ("shared", ("ours", "core"))):
                log(f"  1 throughput, {mode} channels")
                p2p[mode] = run_p2p(errors, f"p2p {mode}", hosts, mode, kinds, s, server_cpu)
                server.flushall()
            rows.append(
                throughput_row(
                    f"1a p2p msg/s, process channels, {PRODUCERS}Px{CONSUMERS}C",
                    p2p["specific"],
                    {"core": 10, "pubsub": 3},
                )
            )
            row = throughput_row(
                f"1b p2p msg/s, one shared channel, {PRODUCERS}Px{CONSUMERS}C",
                p2p["shared"],
                {"core": 10},
            )
            row.notes.append(
                "pubsub: n/a, it has no shared queue (every subscriber gets every message)"
            )
            rows.append(row)
            raw["p2p"] = p2p
        if "rr" in only:
            log("  2 request/reply")
            rr = run_rr(errors, hosts, s, server_cpu)
            server.flushall()
            rows.extend(rr_rows(rr))
            raw["rr"] = rr
        if "tail" in only:
            log("  6 low-concurrency tail")
            tail = run_tail(errors, hosts, s)
            server.flushall()
            rows.extend(tail_rows(tail))
            raw["tail"] = tail
        if "group" in only:
            log("  3 group send")
            fan = run_group(errors, hosts, s)
            server.flushall()
            rows.extend(group_rows(fan, s.group_sizes))
            raw["group"] = fan
        if "ceiling" in only:
            log("  5 redis-benchmark")
            for label, pipeline in (
                ("-q -t set,lpush,lpop", 1),
                ("-q -t set,lpush,lpop -P 16", 16),
            ):
                try:
                    ceiling[label] = _servers.redis_benchmark(
                        server.port, requests=s.bench_requests, pipeline=pipeline
                    )
                except _servers.RedisServerError as error:
                    errors.append(f"redis-benchmark {label}: {error}")
            server.flushall()
            raw["ceiling"] = ceiling
    if "cluster" in only:
        log("  4 throughput on a six-node Redis Cluster (ours only)")
        with _servers.cluster() as nodes:
            log(f"  cluster ready: {', '.join(u.rsplit('/', 1)[-1] for u in nodes.urls)}")
            cl: dict[str, Any] = {}
            cluster_cpu = redis_cpu(
                *(lambda a=address: nodes.cli(a, "INFO", "cpu") for address in nodes.startup_nodes)
            )
            for mode in ("specific", "shared"):
                cl[mode] = run_p2p(
                    errors, f"cluster p2p {mode}", nodes.urls, mode, ("ours",), s, cluster_cpu
                )
                nodes.flushall()
        raw["cluster"] = cl
        for mode, label, targets in (
            ("specific", "process channels", {"core": 10, "pubsub": 3}),
            ("shared", "one shared channel", {"core": 10}),
        ):
            row = throughput_row(f"4  CLUSTER p2p msg/s, {label}", cl[mode], targets)
            for other in ("core", "pubsub"):
                theirs = p2p.get(mode, {}).get(other)
                row.values[other] = theirs.rate if isinstance(theirs, Throughput) else None
            row.notes.append(
                "core/pubsub columns repeat their STANDALONE figures: channels_redis "
                "cannot run on Redis Cluster (its Lua scripts touch keys in several "
                "slots; channels_redis issue #420)"
            )
            rows.append(row)

    title = "quick" if args.quick else "full"
    print(
        f"Channel layer benchmark ({title}; median of {s.repeats} runs, "
        f"{s.group_repeats} for group send) -- {versions()}"
    )
    print(f"load average before/after (1/5/15 min): {load_before} -> {load()}")
    print(
        "msg/s: higher is better; ms: lower is better; ratios: ours' advantage (>1 = ours better)"
    )
    print(render(rows, ceiling))
    verdicts = [ok for row in rows for _, ok in row.verdicts()]
    print(
        f"\ntargets met: {verdicts.count(True)} of {len(verdicts)}"
        + (f"; {verdicts.count(None)} not measurable" if None in verdicts else "")
    )
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


if __name__ == "__main__":
    sys.exit(main())
