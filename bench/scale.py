"""Worker scale-out on one Redis Cluster: do all worker processes get work, evenly, and in order?

For each count of worker processes (default 1, 2, 4, 8, 16), on a private six-node Redis Cluster:
start that many processes, each a member of one worker group with a light consumer (it records
the message and acks it); once every member holds its shards, send 5 messages each of 125
connections per shard (``reply_channel`` and ``order``) and time until every one is acked.
Prints per count: throughput, the shards each process held, each process's share of the messages
against an even share (target within +-25%), and whether any message was lost, handed out twice
or handed out of its connection's order.

    .venv/bin/python bench/scale.py                   # 1, 2, 4, 8, 16 processes: ~2 min
    .venv/bin/python bench/scale.py --counts 17,64    # beyond 16 shards: the rest idle
    .venv/bin/python bench/scale.py --shards 64 --counts 64   # 64 shards (workShards: 64)

With the layer's default 16 work shards, a process beyond the 16th of one channel set holds
none, which the ``idle`` column shows; ``--shards`` sets the count in every process, as
``spec.channelLayer.workShards`` does. Changing the shard count while traffic flows
(16 -> 64 -> 16) is not built, so this benchmark does not do it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import LoadSampler, load
from _servers import cluster

CHANNEL = "bench.work"
PER_CONNECTION = 5
CONNECTIONS_PER_SHARD = 125  # so shards' loads differ by ~10% only (crc32 of reply channels)
SHARDS = 16  # the layer's default; --shards N for another count (CHANNELWORKS_LAYER_SHARDS)
SHARE_TOLERANCE = 0.25
READY_SECONDS = 300.0  # 64 processes start on 2 shared cores
DRAIN_SECONDS = 180.0


async def work(url: str, prefix: str, out: Path, shards: int) -> None:
    """One worker process: take, record, ack, until SIGTERM; then write what it took."""
    from channelworks.layers import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[url], prefix=prefix, capacity=100_000, shards=shards)
    receiver = layer.work_receiver([CHANNEL])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    taken: list[tuple[str, int]] = []
    held: set[int] = set()
    status = out.with_suffix(".shards")
    while not stop.is_set():
        delivery = await receiver.get(timeout=0.2)
        owned = set(receiver.owned_shards)  # type: ignore[attr-defined]
        if owned != held:
            held = owned
            status.write_text(json.dumps(sorted(held)))
        if delivery is None:
            continue
        taken.append((delivery.message["reply_channel"], delivery.message["order"]))
        await delivery.ack()
    await receiver.stop(timeout=5)
    await layer.close()
    out.write_text(json.dumps({"taken": taken, "shards": sorted(held)}))


async def drive(url: str, prefix: str, shards: int) -> tuple[float, float]:
    """Send every message, then wait for the queue to be empty: (seconds to send, to drain)."""
    from channelworks.layers import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[url], prefix=prefix, capacity=100_000, shards=shards)
    per_connection = PER_CONNECTION
    try:
        started = time.monotonic()
        for order in range(per_connection):
            await asyncio.gather(
                *(
                    layer.send(CHANNEL, {"reply_channel": f"specific.b!{c}", "order": order})
                    for c in range(CONNECTIONS_PER_SHARD * shards)
                )
            )
        sent = time.monotonic() - started
        while (await layer.queue_stats()).total_depth > 0:
            if time.monotonic() - started > DRAIN_SECONDS:
                raise SystemExit(f"scale.py: the queue did not drain in {DRAIN_SECONDS:g}s")
            await asyncio.sleep(0.05)
        return sent, time.monotonic() - started
    finally:
        await layer.close()


def _held(out: Path) -> int:
    try:
        return len(json.loads(out.with_suffix(".shards").read_text()))
    except (FileNotFoundError, ValueError):
        return 0


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"scale.py: {what} did not happen within {timeout:g}s")
        time.sleep(0.1)


def run(url: str, count: int, root: Path, shards: int) -> dict[str, Any]:
    prefix = f"scale{secrets.token_hex(3)}"
    outs = [root / f"{prefix}-{n}.json" for n in range(count)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--shards", str(shards), "--worker", url, prefix, str(out)],
            env=env,
        )
        for out in outs
    ]
    try:

        def balanced() -> bool:
            held = [_held(out) for out in outs]
            busy = [n for n in held if n]
            even = max(busy, default=0) - min(busy, default=0) <= 1
            return sum(held) == shards and len(busy) == min(count, shards) and even

        _wait(balanced, READY_SECONDS, f"{count} workers sharing all {shards} shards")
        sent, elapsed = asyncio.run(drive(url, prefix, shards))
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)
    results = [json.loads(out.read_text()) for out in outs]
    return _report(count, results, elapsed, sent, shards)


def _report(
    count: int, results: list[dict[str, Any]], elapsed: float, sent: float, shards: int
) -> dict[str, Any]:
    per_connection: dict[str, list[int]] = {}
    problems: list[str] = []
    for result in results:
        mine: dict[str, list[int]] = {}
        for key, order in result["taken"]:
            mine.setdefault(key, []).append(order)
        for key, orders in mine.items():
            if orders != sorted(orders):
                problems.append(f"{key} out of order in one worker")
            per_connection.setdefault(key, []).extend(orders)
    everything = sum(len(r["taken"]) for r in results)
    complete = {key: sorted(v) for key, v in per_connection.items()}
    wanted = list(range(PER_CONNECTION))
    lost = sum(
        len(set(wanted) - set(complete.get(f"specific.b!{c}", [])))
        for c in range(CONNECTIONS_PER_SHARD * shards)
    )
    messages = PER_CONNECTION * CONNECTIONS_PER_SHARD * shards
    twice = everything - (messages - lost)
    busy = [len(r["taken"]) for r in results if r["taken"]]
    even = messages / min(count, shards)
    shares = [len(r["taken"]) / even for r in results]
    within = all(abs(share - 1) <= SHARE_TOLERANCE for share in shares if share > 0)
    return {
        "processes": count,
        "msg_per_s": messages / elapsed,
        "messages": messages,
        "send_s": sent,
        "drain_s": elapsed,
        "shards": [len(r["shards"]) for r in results],
        "idle": count - len(busy),
        "share_min": min(shares),
        "share_max": max(shares),
        "share_ok": within,
        "lost": lost,
        "twice": twice,
        "order_problems": len(problems),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,2,4,8,16")
    parser.add_argument("--shards", type=int, default=SHARDS)
    parser.add_argument(
        "--worker", nargs=3, metavar=("URL", "PREFIX", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        url, prefix, out = args.worker
        asyncio.run(work(url, prefix, Path(out), args.shards))
        return 0
    counts = [int(item) for item in args.counts.split(",")]
    sampler = LoadSampler()
    before = load()
    rows = []
    with cluster() as nodes, tempfile.TemporaryDirectory() as root:
        for count in counts:
            print(f"[scale] {count} worker processes...", file=sys.stderr)
            rows.append(run(nodes.url, count, Path(root), args.shards))
    print(
        f"Worker scale-out on a 6-node Redis Cluster (3 masters), {rows[0]['messages']} "
        f"messages of {CONNECTIONS_PER_SHARD * args.shards} connections, {args.shards} work "
        f"shards; {os.cpu_count()} CPUs; "
        f"load {before} -> {load()} (1-min samples: {sampler.stop()})"
    )
    header = (
        f"{'procs':>5} {'msg/s':>8} {'drain s':>8} {'idle':>5} {'share min..max':>15} "
        f"{'+-25%':>6} {'lost':>5} {'twice':>6} {'order':>6}  shards held"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        shares = f"{row['share_min']:.2f}..{row['share_max']:.2f}"
        print(
            f"{row['processes']:>5} {row['msg_per_s']:>8,.0f} {row['drain_s']:>8.1f} "
            f"{row['idle']:>5} {shares:>15} {'yes' if row['share_ok'] else 'NO':>6} "
            f"{row['lost']:>5} {row['twice']:>6} {row['order_problems']:>6}  "
            f"{','.join(str(n) for n in row['shards'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
