"""Worker scale-out on one Redis Cluster: do all worker processes get work, evenly, and in order,
also while the work shard count changes?

Throughput (default 1, 2, 4, 8 processes): for each count of worker processes, on a private
six-node Redis Cluster:
start that many processes, each a member of one worker group with a light consumer (it records
the message and acks it); once every member holds its shards, send 5 messages each of 125
connections per shard (``reply_channel`` and ``order``) and time until every one is acked.
Prints per count: throughput, the shards each process held, each process's share of the messages
against an even share (target within +-25%), and whether any message was lost, handed out twice
or handed out of its connection's order.

    .venv/bin/python bench/scale.py                   # 1, 2, 4, 8 processes: ~2 min
    .venv/bin/python bench/scale.py --counts 17,64    # beyond 16 shards: the rest idle
    .venv/bin/python bench/scale.py --shards 64 --counts 64   # 64 shards from the start
    .venv/bin/python bench/scale.py --reshard 64      # 64 processes, 16 -> 64 -> 16 mid-run

With the layer's default 16 work shards, a process beyond the 16th of one channel set holds
none, which the ``idle`` column shows; ``--shards`` sets the count every process starts with.

``--reshard N``: N worker processes start on 16 shards; one sender keeps sending rounds (one
message to each of 8,000 connections per round, a connection's next only after its last was
sent) while the count is changed online to 64 (``set_work_shards``, as the operator does) and,
once the old shards drained, back to 16; meanwhile it reads the shard state every 2 s as the
operator does at each poll (which forgets a drained change; until then every member rebalances
4 times a second), and prints each phase's progress on stderr. Prints: how long each change
took to drain and to be held by every process, whether every one of the 64 shards was held and
every process served work while there were 64, each process's share of the messages of that
phase against even (target within +-25%), and lost / twice / out-of-order counts, order judged
across processes by the time each message was handed out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _machine import LoadSampler, load
from _servers import cluster

CHANNEL = "bench.work"
PER_CONNECTION = 5
CONNECTIONS_PER_SHARD = 125  # so shards' loads differ by ~10% only (crc32 of reply channels)
SHARDS = 16  # the layer's default; --shards N for another count (CHANNELWORKS_LAYER_SHARDS)
SHARE_TOLERANCE = 0.25
READY_SECONDS = 600.0  # 64 processes start on 2 shared cores (at load 30+: minutes)
DRAIN_SECONDS = 180.0
# Seconds a Redis node may take to answer a connect or a ping: on a shared 2-core machine at load
# 20-30 the default 1 s drops healthy nodes.
LOADED = 5.0
# --reshard: leases and expiry for a machine where a process can stall for seconds (load 30+ on 2
# cores): a lost lease or an expired message is the layer's documented behaviour under a stall,
# not something the change of the shard count does, and would blur what this run measures.
LEASE_SECONDS = 30.0
EXPIRY_SECONDS = 3600
RETRY_SECONDS = 120.0  # a starved cluster may fail over; ride it out rather than give up
# --reshard: connections (125 per shard at 64 shards, as above), the counts, and how many rounds
# run before the first change, at 64 shards once the old ones drained, and after the last change.
# The shares are judged at 64 shards: 10 rounds there (about 1,250 messages a process with 64
# processes) so that they measure the layer's split, not which of 64 processes the 2 cores ran
# in a few seconds (with 3 rounds, a 5.6 s window on a quiet machine gave 0.77..1.37).
RESHARD_CONNECTIONS = 8_000
RESHARD_LOW, RESHARD_HIGH = 16, 64
ROUNDS_BEFORE, ROUNDS_AT_HIGH, ROUNDS_AFTER = 2, 10, 2
# --reshard: what the operator does at each poll (its shortest pollIntervalSeconds): read the
# shard state, which forgets a change whose old shards drained. Until someone does, every
# member keeps balancing 4 times a second to follow the drain (measured: 7.2 ms of CPU a second
# per idle member instead of 1.2; with 64 members a fifth of a core for nothing).
OPERATOR_POLL_SECONDS = 2.0
# --reshard: how often the sender looks at the backlog it paces itself by (each look is a
# queue_stats over every shard of both epochs).
PACING_SECONDS = 0.25


async def work(url: str, prefix: str, out: Path, shards: int, reshard: bool) -> None:
    """One worker process: take, record (with the time), ack, until SIGTERM; then write what it
    took. ``<out>.shards`` holds the shard count it last read and the shards it holds."""
    from channelworks.layers import RedisChannelLayer

    stalls: dict[str, Any] = {}
    if reshard:
        stalls = {
            "lease_seconds": LEASE_SECONDS,
            "expiry": EXPIRY_SECONDS,
            "retry_seconds": RETRY_SECONDS,
        }
    layer = RedisChannelLayer(
        hosts=[url],
        prefix=prefix,
        capacity=100_000,
        shards=shards,
        connect_timeout=LOADED,
        **stalls,
    )
    receiver = layer.work_receiver([CHANNEL])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    taken: list[tuple[str, int, float]] = []
    held: list[int] = []
    count = 0
    status = out.with_suffix(".shards")
    while not stop.is_set():
        delivery = await receiver.get(timeout=0.2)
        owned = receiver.owned_shards  # type: ignore[attr-defined]
        now_count = receiver.shard_count  # type: ignore[attr-defined]
        if (owned, now_count) != (held, count):
            held, count = owned, now_count
            staged = status.with_suffix(".staged")
            staged.write_text(json.dumps({"count": count, "shards": held}))
            staged.replace(status)
        if delivery is None:
            continue
        message = delivery.message
        taken.append((message["reply_channel"], message["order"], time.time()))
        await delivery.ack()
    await receiver.stop(timeout=5)
    await layer.close()
    out.write_text(json.dumps({"taken": taken, "shards": sorted(held)}))


async def drive(url: str, prefix: str, shards: int) -> tuple[float, float]:
    """Send every message, then wait for the queue to be empty: (seconds to send, to drain)."""
    from channelworks.layers import RedisChannelLayer

    layer = RedisChannelLayer(
        hosts=[url], prefix=prefix, capacity=100_000, shards=shards, connect_timeout=LOADED
    )
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


def _status(out: Path) -> tuple[int, list[int]]:
    """(the shard count a worker last read, the shards it holds); (0, []) before it wrote."""
    try:
        status = json.loads(out.with_suffix(".shards").read_text())
    except (FileNotFoundError, ValueError):
        return 0, []
    return int(status["count"]), list(status["shards"])


def _held(out: Path) -> int:
    return len(_status(out)[1])


def _all_held(outs: list[Path], shards: int) -> bool:
    """Every worker has read ``shards`` as the count, every shard has one holder, and each
    worker holds its share (they differ by one at most): a member that read the count early may
    hold a shard beyond its share until its next balancing round gives it back, and a share
    measured from then would be that hand-over's, not the steady state's."""
    statuses = [_status(out) for out in outs]
    if any(count != shards for count, _ in statuses):
        return False
    held = [index for _, indices in statuses for index in indices]
    counts = [len(indices) for _, indices in statuses]
    return sorted(held) == list(range(shards)) and max(counts) - min(counts) <= 1


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"scale.py: {what} did not happen within {timeout:g}s")
        time.sleep(0.1)


def run(url: str, count: int, root: Path, shards: int) -> dict[str, Any]:
    prefix = f"scale{secrets.token_hex(3)}"
    outs = [root / f"{prefix}-{n}.json" for n in range(count)]

    def balanced() -> bool:
        held = [_held(out) for out in outs]
        busy = [n for n in held if n]
        even = max(busy, default=0) - min(busy, default=0) <= 1
        return sum(held) == shards and len(busy) == min(count, shards) and even

    with _workers(url, prefix, outs, shards):
        _wait(balanced, READY_SECONDS, f"{count} workers sharing all {shards} shards")
        sent, elapsed = asyncio.run(drive(url, prefix, shards))
    results = [json.loads(out.read_text()) for out in outs]
    return _report(count, results, elapsed, sent, shards)


@contextlib.contextmanager
def _workers(
    url: str, prefix: str, outs: list[Path], shards: int, reshard: bool = False
) -> Iterator[None]:
    """One worker process per out file, started with ``shards``; SIGTERM and wait on leaving."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    options = ["--shards", str(shards), *(["--reshard", "1"] if reshard else [])]
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, *options, "--worker", url, prefix, str(out)], env=env
        )
        for out in outs
    ]
    try:
        yield
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 120  # 64 processes stopping at load 60+ take a while
        for worker in workers:
            try:
                worker.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()  # its results are missing: the run reports it, not this
                worker.wait()


def _report(
    count: int, results: list[dict[str, Any]], elapsed: float, sent: float, shards: int
) -> dict[str, Any]:
    per_connection: dict[str, list[int]] = {}
    problems: list[str] = []
    for result in results:
        mine: dict[str, list[int]] = {}
        for key, order, _ in result["taken"]:
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


async def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"scale.py: {what} did not happen within {timeout:g}s")
        await asyncio.sleep(0.1)


async def reshard_drive(url: str, prefix: str, outs: list[Path]) -> dict[str, Any]:
    """Send rounds while the count goes 16 -> 64 -> 16; returns the rounds sent and the times."""
    from channelworks.exceptions import ShardChangePending
    from channelworks.layers import RedisChannelLayer

    sender = RedisChannelLayer(
        hosts=[url],
        prefix=prefix,
        capacity=100_000,
        connect_timeout=LOADED,
        expiry=EXPIRY_SECONDS,
        retry_seconds=RETRY_SECONDS,
    )
    changer = RedisChannelLayer(
        hosts=[url], prefix=prefix, connect_timeout=LOADED, retry_seconds=RETRY_SECONDS
    )
    rounds = 0
    done = asyncio.Event()
    marks: dict[str, float] = {}
    began = time.monotonic()
    latest: Any = None  # the shard state as the operator-like poll last read it
    epoch = 0  # the epoch of the last change

    def progress(what: str) -> None:
        print(
            f"[scale] {time.monotonic() - began:6.1f} s: {what} ({rounds} rounds sent, "
            f"load {os.getloadavg()[0]:.1f})",
            file=sys.stderr,
            flush=True,
        )

    async def send_rounds() -> None:
        nonlocal rounds
        while not done.is_set():
            # Paced to what the workers take: at most about one round waits (no backlog that
            # grows without bound on a busy machine), but traffic never stops. A phase that
            # times out sets ``done``: the run then ends with its message instead of waiting
            # here for a backlog that does not drain.
            while (await sender.queue_stats()).total_depth > RESHARD_CONNECTIONS:
                if done.is_set():
                    return
                await asyncio.sleep(PACING_SECONDS)
            await asyncio.gather(
                *(
                    sender.send(CHANNEL, {"reply_channel": f"specific.r!{c}", "order": rounds})
                    for c in range(RESHARD_CONNECTIONS)
                )
            )
            rounds += 1

    async def poll_like_the_operator() -> None:
        nonlocal latest
        while not done.is_set():
            latest = await changer.work_shards()
            await asyncio.sleep(OPERATOR_POLL_SECONDS)

    async def change(count: int, mark: str) -> None:
        async def changed() -> bool:
            nonlocal epoch
            try:
                epoch = (await changer.set_work_shards(count)).current.number
            except ShardChangePending:
                return False
            marks[mark] = time.time()
            return True

        await _until(changed, READY_SECONDS, f"the change to {count} shards")
        progress(f"shards changed to {count}")

    async def drained() -> bool:
        return latest is not None and latest.current.number >= epoch and latest.draining is None

    async def held(count: int) -> bool:
        return _all_held(outs, count)

    async def rounds_from(first: int, more: int) -> None:
        async def sent() -> bool:
            return rounds >= first + more

        await _until(sent, DRAIN_SECONDS, f"{more} rounds of sends")

    loop = asyncio.get_running_loop()
    sending = loop.create_task(send_rounds())
    polling = loop.create_task(poll_like_the_operator())
    try:
        await rounds_from(0, ROUNDS_BEFORE)
        progress(f"{ROUNDS_BEFORE} rounds at {RESHARD_LOW} shards")
        await change(RESHARD_HIGH, "up")
        await _until(lambda: held(RESHARD_HIGH), READY_SECONDS, "every 64 shards held")
        marks["up_held"] = time.time()
        progress(f"all {RESHARD_HIGH} shards held")
        await _until(drained, READY_SECONDS, "the 16 old shards drained")
        marks["up_drained"] = time.time()
        progress(f"the old {RESHARD_LOW} shards drained")
        await rounds_from(rounds, ROUNDS_AT_HIGH)
        await change(RESHARD_LOW, "down")
        await _until(lambda: held(RESHARD_LOW), READY_SECONDS, "16 shards held after 64 -> 16")
        marks["down_held"] = time.time()
        progress(f"all {RESHARD_LOW} shards held")
        await rounds_from(rounds, ROUNDS_AFTER)
    finally:
        done.set()
        await sending
        await polling
    marks["sent"] = time.time()
    progress("last round sent")
    try:
        while (await changer.queue_stats()).total_depth > 0 or (
            await changer.work_shards()
        ).draining is not None:
            if time.time() - marks["sent"] > DRAIN_SECONDS:
                raise SystemExit(f"scale.py: the queue did not drain in {DRAIN_SECONDS:g}s")
            await asyncio.sleep(0.5)
        marks["empty"] = time.time()
    finally:
        await sender.close()
        await changer.close()
    return {"rounds": rounds, "marks": marks}


def reshard(url: str, count: int, root: Path) -> dict[str, Any]:
    prefix = f"reshard{secrets.token_hex(3)}"
    outs = [root / f"{prefix}-{n}.json" for n in range(count)]
    with _workers(url, prefix, outs, RESHARD_LOW, reshard=True):
        _wait(lambda: _all_held(outs, RESHARD_LOW), READY_SECONDS, "16 shards held at the start")
        drive = asyncio.run(reshard_drive(url, prefix, outs))
    missing = [out.name for out in outs if not out.exists()]
    if missing:
        raise SystemExit(f"scale.py: {len(missing)} workers wrote no results (killed)")
    results = [json.loads(out.read_text()) for out in outs]
    return _reshard_report(results, drive["rounds"], drive["marks"])


def _reshard_report(
    results: list[dict[str, Any]], rounds: int, marks: dict[str, float]
) -> dict[str, Any]:
    by_connection: dict[str, list[tuple[float, int]]] = {}
    for result in results:
        for key, order, at in result["taken"]:
            by_connection.setdefault(key, []).append((at, order))
    wanted = set(range(rounds))
    names = [f"specific.r!{c}" for c in range(RESHARD_CONNECTIONS)]
    lost = sum(len(wanted - {order for _, order in by_connection.get(n, [])}) for n in names)
    everything = sum(len(rows) for rows in by_connection.values())
    twice = everything - (rounds * len(names) - lost)
    out_of_order = sum(
        1
        for rows in by_connection.values()
        if [order for _, order in sorted(rows)] != sorted(order for _, order in rows)
    )
    # Shares while 64 shards were read (the old 16 drained) until the change back.
    start, end = marks["up_drained"], marks["down"]
    taken = [sum(1 for _, _, at in r["taken"] if start <= at < end) for r in results]
    even = sum(taken) / len(taken)
    shares = [n / even for n in taken] if even else [0.0]
    return {
        "processes": len(results),
        "rounds": rounds,
        "messages": rounds * len(names),
        "up_held_s": marks["up_held"] - marks["up"],
        "up_drained_s": marks["up_drained"] - marks["up"],
        "down_held_s": marks["down_held"] - marks["down"],
        "drain_after_s": marks["empty"] - marks["sent"],
        "served_at_high": sum(1 for n in taken if n),
        "high_messages": sum(taken),
        "high_seconds": end - start,
        "share_min": min(shares),
        "share_max": max(shares),
        "share_ok": all(abs(share - 1) <= SHARE_TOLERANCE for share in shares),
        "lost": lost,
        "twice": twice,
        "out_of_order": out_of_order,
    }


def print_reshard(row: dict[str, Any]) -> None:
    print(
        f"Shard count {RESHARD_LOW} -> {RESHARD_HIGH} -> {RESHARD_LOW} mid-run on a 6-node Redis "
        f"Cluster (3 masters): {row['processes']} worker processes, {row['messages']:,} messages "
        f"({row['rounds']} rounds x {RESHARD_CONNECTIONS:,} connections); {os.cpu_count()} CPUs"
    )
    print(
        f"  16 -> 64: every process read the new count and all 64 shards held after "
        f"{row['up_held_s']:.1f} s; the old 16 drained after {row['up_drained_s']:.1f} s"
    )
    print(f"  64 -> 16: all 16 shards held after {row['down_held_s']:.1f} s")
    print(
        f"  at 64 shards ({row['high_seconds']:.1f} s, {row['high_messages']:,} messages): "
        f"{row['served_at_high']} of {row['processes']} processes served work; shares of even "
        f"{row['share_min']:.2f}..{row['share_max']:.2f} "
        f"({'within' if row['share_ok'] else 'NOT within'} +-{SHARE_TOLERANCE:.0%})"
    )
    print(
        f"  lost {row['lost']}, handed out twice {row['twice']}, connections out of order "
        f"{row['out_of_order']}; queue empty {row['drain_after_s']:.1f} s after the last send"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,2,4,8")
    parser.add_argument(
        "--reshard", type=int, metavar="N", help="N processes while the count goes 16 -> 64 -> 16"
    )
    parser.add_argument("--shards", type=int, default=SHARDS)
    parser.add_argument(
        "--worker", nargs=3, metavar=("URL", "PREFIX", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        url, prefix, out = args.worker
        asyncio.run(work(url, prefix, Path(out), args.shards, bool(args.reshard)))
        return 0
    counts = [int(item) for item in args.counts.split(",")]
    sampler = LoadSampler()
    before = load()
    if args.reshard:
        with cluster() as nodes, tempfile.TemporaryDirectory() as root:
            print(f"[scale] {args.reshard} worker processes, resharding...", file=sys.stderr)
            row = reshard(nodes.url, args.reshard, Path(root))
        print_reshard(row)
        print(f"  load {before} -> {load()} (1-min samples: {sampler.stop()})")
        return 0
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
