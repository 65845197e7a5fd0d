#!/usr/bin/env python
"""What an exact per-channel ``capacity`` would cost the Redis layer on a cluster, measured.

    .venv/bin/python bench/capacity.py             # ~1 min: 3 runs of 5 s per way
    .venv/bin/python bench/capacity.py --seconds 2 --repeat 1

The layer spreads the messages of connections over the 16 shard streams of their channel (hash
tags on different slots, so on a cluster on every master) and checks ``capacity`` per shard
stream, in the script that appends (docs/channel-layer.md, "What capacity counts"). This measures
that against the two ways an exact count per channel could be kept, on a private six-node cluster
(3 masters + 3 replicas), with the same Lua append the three ways share (``XLEN`` check, ``XADD``):

- ``per-shard``   (the layer's rule) one script on the message's shard stream: one round trip to
                  one master;
- ``read-all``    first ``XLEN`` of all 16 shard streams (pipelined per master, the masters in
                  parallel), then the script: a second round trip, to every master, each send;
- ``counter``     the script, plus ``INCR`` of one counter key per channel on send and ``DECR`` on
                  take (the take is simulated at once): every send and take of the channel also
                  hits that key, on one master.

Prints, per way, messages/s (64 concurrent senders in one process; each sends, then does what
the take of its message adds: the ``DECR`` of ``counter``), the median latency of the send alone,
and the share of the run's commands that the busiest master served (from ``INFO commandstats``;
an even spread over 3 masters is 33%). The client is one Python process on the same 2 cores as
the servers: the ratios between the ways are the figure, not the absolute rates. Exit code 0
unless the benchmark itself crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

import _servers  # noqa: E402
from _machine import load  # noqa: E402
from redis.asyncio.cluster import RedisCluster  # noqa: E402

SHARDS = 16
SENDERS = 64
CAPACITY = 10**9  # never reached: what is measured is the cost of checking, not of refusing
PAYLOAD = b"x" * 200
APPEND = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])
return 1
"""

Send = Callable[[RedisCluster, Any, int], Awaitable[None]]
Take = Callable[[RedisCluster], Awaitable[None]]


def stream(shard: int) -> str:
    return f"{{bench#{shard}}}:stream:chat.receive"


COUNTER = "{bench:count}:chat.receive"


async def per_shard(client: RedisCluster, append: Any, n: int) -> None:
    await append(keys=[stream(n % SHARDS)], args=[CAPACITY, PAYLOAD])


async def read_all(client: RedisCluster, append: Any, n: int) -> None:
    pipe = client.pipeline(transaction=False)
    for shard in range(SHARDS):
        pipe.xlen(stream(shard))
    lengths = await pipe.execute()
    if sum(lengths) < CAPACITY:
        await append(keys=[stream(n % SHARDS)], args=[CAPACITY, PAYLOAD])


async def counter(client: RedisCluster, append: Any, n: int) -> None:
    if await client.incr(COUNTER) <= CAPACITY:
        await append(keys=[stream(n % SHARDS)], args=[CAPACITY, PAYLOAD])


async def counter_take(client: RedisCluster) -> None:
    await client.decr(COUNTER)  # the take of that message, by a worker


async def nothing(client: RedisCluster) -> None:
    return None


# Each way: what a send does, and what the take of its message adds (not in the send's latency).
WAYS: dict[str, tuple[Send, Take]] = {
    "per-shard": (per_shard, nothing),
    "read-all": (read_all, nothing),
    "counter": (counter, counter_take),
}


async def commands_by_master(client: RedisCluster) -> list[int]:
    counts = []
    for node in client.get_primaries():
        stats = await client.info("commandstats", target_nodes=node)
        counts.append(sum(int(value["calls"]) for value in stats.values()))
    return counts


async def run_way(
    nodes: _servers.RedisClusterNodes, send: Send, take: Take, seconds: float
) -> dict[str, float]:
    host, port = nodes.startup_nodes[0]
    client = RedisCluster(host=host, port=port)
    await client.initialize()
    try:
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        append = client.register_script(APPEND)
        await append(keys=[stream(0)], args=[CAPACITY, PAYLOAD])  # loads the script
        await client.config_resetstat(target_nodes=RedisCluster.PRIMARIES)
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def sender(first: int) -> None:
            n = first
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await send(client, append, n)
                latencies.append(time.perf_counter() - started)
                await take(client)
                n += SENDERS

        started = time.perf_counter()
        await asyncio.gather(*(sender(i) for i in range(SENDERS)))
        elapsed = time.perf_counter() - started
        by_master = await commands_by_master(client)
    finally:
        await client.aclose()
    return {
        "messages_per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "busiest_master_share": max(by_master) / max(sum(by_master), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per timed run (5)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per way (3)")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in WAYS}
    with _servers.cluster() as nodes:
        for _ in range(args.repeat):
            for name, (send, take) in WAYS.items():  # interleaved: load drifts hit all alike
                print(f"[capacity] {name}", file=sys.stderr, flush=True)
                results[name].append(asyncio.run(run_way(nodes, send, take, args.seconds)))
    print(f"load: {load()}; {args.repeat} runs of {args.seconds:g} s per way, medians")
    print(f"{'way':<10} {'msgs/s':>9} {'vs per-shard':>13} {'p50 ms':>8} {'busiest master':>15}")
    base = statistics.median(run["messages_per_second"] for run in results["per-shard"])
    for name, runs in results.items():
        rate = statistics.median(run["messages_per_second"] for run in runs)
        p50 = statistics.median(run["p50_ms"] for run in runs)
        share = statistics.median(run["busiest_master_share"] for run in runs)
        print(f"{name:<10} {rate:>9.0f} {rate / base:>12.0%} {p50:>8.2f} {share:>14.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
