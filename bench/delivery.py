#!/usr/bin/env python
"""Delivery benchmark (issue 10): what reaches the application across network drops and a
deploy, Channelworks' recovery against an ordinary Channels 4 app.

    .venv/bin/python bench/delivery.py                   # 200 subscribers, 50 msg/s, 60 s
    .venv/bin/python bench/delivery.py --subscribers 50 --duration 30    # lighter
    .venv/bin/python bench/delivery.py --help

Both systems run at the same time on this machine, each on its own private redis-server, each
behind its own TCP proxy (tests/support/cuttable_proxy.py) that every ``--cut-every`` seconds
closes every connection and refuses new ones for ``--cut-for`` seconds; half-way through, one
front process of each is stopped and started again (ours: SIGTERM, so the interface drains
and closes its sockets with 1012; theirs: SIGTERM to Daphne):

- ``ours``   two ``channelworks-interface`` processes and one ``channelworks-worker``
             (bench/ws_app/cw_project, sync consumers, ``CHANNELWORKS["GROUP_HISTORY"]`` on the
             bench group); subscribers speak the shipped JS client's protocol
             (tests/support/stream_client.py: resume token, positions, de-duplication by
             offset), plus ``--browsers`` headless Chromium pages running the shipped
             websocketbridge.js itself;
- ``theirs`` two Daphne processes with channels_redis' core layer (bench/ws_app/c4_project);
             subscribers are plain reconnecting clients (same backoff), as a Channels app has.

A publisher per system (straight to a front process that is not restarted) sends
``{"n": i}`` to the group at ``--rate`` per second for ``--duration`` seconds. Printed per
system: messages delivered / sent (over all subscribers), duplicates the application saw,
out-of-order deliveries, and per cut the recovery time: from the end of the cut until a
subscriber got the first message published after it (it has everything before by then, for
ours), median and max over subscribers. A missed target is a result, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ws  # noqa: E402  (Server, System, build_theirs: the processes of bench/ws.py)
from _servers import HOST, REPO, standalone  # noqa: E402

from tests.support.cuttable_proxy import CuttableProxy  # noqa: E402
from tests.support.stream_client import StreamClient  # noqa: E402

GROUP = "d"
PATH = f"/broadcast/{GROUP}/"
PUBLISHER_PATIENCE = 60.0  # seconds the publisher may fail to send before the run is abandoned
CAPACITY = 10_000  # per channel, both systems: a burst after a cut must not overflow a queue
SCRIPT = REPO / "consumers_sdk/src/channelworks/static/channels/js/websocketbridge.js"


@dataclass(frozen=True)
class Plan:
    subscribers: int
    browsers: int
    rate: float
    duration: float
    cut_every: float
    cut_for: float
    restart_at: float
    settle: float

    @property
    def cuts(self) -> list[float]:
        """When each cut begins (seconds after the start)."""
        count = int((self.duration - 1) // self.cut_every)
        return [self.cut_every * (k + 1) for k in range(count)]


# Subscribers --------------------------------------------------------------------------------


@dataclass
class PlainClient:
    """A Channels app's client: reconnects with the same backoff; no recovery."""

    url: str
    received: list[tuple[int, float]] = field(default_factory=list)
    connections: int = 0
    _stopping: bool = False

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        attempt = 0
        while not self._stopping:
            try:
                async with connect(self.url, open_timeout=10) as socket:
                    self.connections += 1
                    attempt = 0
                    async for frame in socket:
                        n = json.loads(frame).get("n")
                        if isinstance(n, int):
                            self.received.append((n, time.time()))
            except (OSError, TimeoutError, WebSocketException):
                pass
            delay = min(2.0, 0.2 * 2**attempt)
            attempt += 1
            await asyncio.sleep(delay * (1 - 0.5 * random.random()))

    async def stop(self) -> None:
        self._stopping = True


def stream_received(client: StreamClient) -> list[tuple[int, float]]:
    return [
        (json.loads(d.text)["n"], d.at) for d in client.delivered if d.group == f"bench-{GROUP}"
    ]


# One system ---------------------------------------------------------------------------------


def build_ours(redis_url: str, logdir: Path) -> ws.System:
    system = ws.build_ours(redis_url, logdir, interfaces=2, workers=1, cw="sync", capacity=CAPACITY)
    for server in system.back:
        server.env["DJANGO_SETTINGS_MODULE"] = "ws_app.cw_project.delivery_settings"
    for server in system.front:
        server.env.update(
            CHANNELWORKS_INTERFACE_RESUME_SECONDS="30",
            CHANNELWORKS_INTERFACE_MESSAGE_RATE="10000",  # the publisher sends 50/s
            CHANNELWORKS_INTERFACE_MESSAGE_BURST="2000",
            CHANNELWORKS_INTERFACE_ALLOWED_ORIGINS="*",  # the Chromium pages are file:// ones
        )
    return system


def wait_ready(servers: Sequence[ws.Server], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(server.is_ready() for server in servers):
        if time.monotonic() > deadline:
            raise ws.BenchError(f"not ready after {timeout}s: {[s.name for s in servers]}")
        time.sleep(0.2)


def restart(server: ws.Server) -> float:
    """Stop ``server`` with SIGTERM (ours drains), start it again on its port; seconds taken."""
    began = time.monotonic()
    server.stop()
    server.wait_stopped(30)
    server.start()
    wait_ready([server])
    return time.monotonic() - began


async def publish(url: str, plan: Plan, start: float) -> int:
    """Send ``{"n": i}`` on schedule; a message the server refused (its socket closed, e.g. a
    full channel under overload) is sent again on a new socket, so every ``n`` is sent once."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    total = int(plan.rate * plan.duration)
    n = 0
    failing_since: float | None = None
    while n < total:
        try:
            async with connect(url, open_timeout=30) as socket:
                # The publisher's socket is in the group too: read (and drop) what it gets.
                drain = asyncio.ensure_future(_discard(socket))
                try:
                    while n < total:
                        await asyncio.sleep(max(0.0, start + n / plan.rate - time.time()))
                        await socket.send(json.dumps({"n": n}))
                        n += 1
                        failing_since = None
                finally:
                    drain.cancel()
        except (OSError, WebSocketException):
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > PUBLISHER_PATIENCE:
                raise
            await asyncio.sleep(0.2)
    return total


async def _discard(socket: Any) -> None:
    from websockets.exceptions import WebSocketException

    with contextlib.suppress(WebSocketException):
        async for _ in socket:
            pass


async def browsers_run(url: str, count: int, workdir: Path, stop: asyncio.Event) -> list[list[int]]:
    """``count`` Chromium pages with the shipped client; what each page's application got."""
    from tests.dataplane import cdp

    if count == 0 or not cdp.CHROMIUM.exists():
        return []
    page_file = workdir / "page.html"
    page_file.write_text(
        f'<script src="{SCRIPT.as_uri()}"></script><script>var got = [];'
        "var bridge = new channels.WebSocketBridge();"
        f"bridge.connect({json.dumps(url)});"
        "bridge.listen(function (m) { if (m && typeof m.n === 'number') got.push(m.n); });"
        "</script>"
    )
    async with cdp.chromium(workdir / "profile", workdir / "chromium.log") as browser:
        pages = [await browser.new_page() for _ in range(count)]
        for page in pages:
            await page.goto(page_file.as_uri())
        await stop.wait()
        return [list(await page.evaluate("got")) for page in pages]


async def run_system(kind: str, plan: Plan, start: float, workdir: Path) -> dict[str, Any]:
    logdir = workdir / kind
    logdir.mkdir(parents=True)
    with standalone() as redis:
        system = build_ours(redis.url, logdir) if kind == "ours" else None
        if system is None:
            system = ws.build_theirs("core", redis.url, logdir, daphnes=2)
            for server in system.front:
                server.env["BENCH_CAPACITY"] = str(CAPACITY)
        for server in system.servers:
            server.start()
        try:
            wait_ready(system.servers)
            return await _measure(kind, system, plan, start, workdir)
        finally:
            for server in system.servers:
                server.stop()
            for server in system.servers:
                server.wait_stopped(20)


async def _measure(
    kind: str, system: ws.System, plan: Plan, start: float, workdir: Path
) -> dict[str, Any]:
    targets = [(HOST, server.port or 0) for server in system.front]
    proxy = await CuttableProxy(targets).start()
    url = f"ws://{HOST}:{proxy.port}{PATH}"
    clients: list[Any] = [
        StreamClient(url) if kind == "ours" else PlainClient(url) for _ in range(plan.subscribers)
    ]
    tasks = [asyncio.ensure_future(client.run()) for client in clients]
    stop_browsers = asyncio.Event()
    browsers = asyncio.ensure_future(
        browsers_run(url, plan.browsers if kind == "ours" else 0, workdir / "pages", stop_browsers)
    )
    (workdir / "pages").mkdir(exist_ok=True)
    await asyncio.sleep(max(0.0, start - time.time()))  # both systems begin together
    publisher = asyncio.ensure_future(publish(system.front[1].url(PATH), plan, start + 2))
    cut_ends: list[float] = []
    restart_seconds = 0.0
    events = sorted([(t, "cut") for t in plan.cuts] + [(plan.restart_at, "restart")])
    for at, what in events:
        await asyncio.sleep(max(0.0, start + 2 + at - time.time()))
        if what == "cut":
            proxy.cut(plan.cut_for)
            cut_ends.append(time.time() + plan.cut_for)
        else:
            restart_seconds = await asyncio.to_thread(restart, system.front[0])
    sent = await publisher
    await asyncio.sleep(plan.settle)
    stop_browsers.set()
    pages = await browsers
    for client in clients:
        await client.stop()
    for task in tasks:
        task.cancel()
    await proxy.stop()
    received = [
        stream_received(client) if kind == "ours" else client.received for client in clients
    ]
    return summarize(kind, sent, received, pages, cut_ends, start + 2, plan, restart_seconds)


def summarize(
    kind: str,
    sent: int,
    received: list[list[tuple[int, float]]],
    pages: list[list[int]],
    cut_ends: list[float],
    publish_start: float,
    plan: Plan,
    restart_seconds: float,
) -> dict[str, Any]:
    delivered = duplicates = out_of_order = 0
    seen_anywhere: set[int] = set()
    for got in [[n for n, _ in r] for r in received] + pages:
        seen_anywhere.update(got)
        seen: set[int] = set()
        highest = -1
        for n in got:
            if n in seen:
                duplicates += 1
                continue
            seen.add(n)
            if n < highest:
                out_of_order += 1
            highest = max(highest, n)
        delivered += len(seen & set(range(sent)))
    recovery: list[dict[str, float]] = []
    for end in cut_ends:
        first_after = int((end - publish_start) * plan.rate) + 1
        times = [
            next((at - end for n, at in r if n >= first_after), float("inf")) for r in received
        ]
        finite = [t for t in times if t != float("inf")]
        recovery.append(
            {
                "median": statistics.median(finite) if finite else float("inf"),
                "max": max(times) if times else float("inf"),
            }
        )
    page_delivered = sum(len(set(p) & set(range(sent))) for p in pages)
    return {
        "kind": kind,
        "sent": sent,
        "subscribers": len(received),
        "pages": len(pages),
        "delivered": delivered,
        "expected": sent * (len(received) + len(pages)),
        "page_delivered": page_delivered,
        "duplicates": duplicates,
        # Sent, but no subscriber got it: lost before the fan-out (e.g. a publisher socket
        # closed by an overloaded server with frames in flight), not by a subscriber's drop.
        "reached_nobody": len(set(range(sent)) - seen_anywhere),
        "out_of_order": out_of_order,
        "recovery": recovery,
        "restart_seconds": restart_seconds,
    }


def child(kind: str, plan: Plan, start: float, workdir: str, out: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    logging.getLogger("websockets").setLevel(logging.CRITICAL)  # clients see drops by design
    try:
        out.put(asyncio.run(run_system(kind, plan, start, Path(workdir))))
    except BaseException as error:  # reported by the parent
        out.put({"kind": kind, "error": f"{type(error).__name__}: {error}"})


# Report -------------------------------------------------------------------------------------


def report(results: list[dict[str, Any]], plan: Plan, wall: float) -> str:
    lines = [
        f"delivery: {plan.subscribers} subscribers per system (+{plan.browsers} Chromium pages "
        f"on ours), {plan.rate:g} msg/s for {plan.duration:g} s, every connection cut for "
        f"{plan.cut_for:g} s every {plan.cut_every:g} s, one front process restarted at "
        f"{plan.restart_at:g} s; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
        f"{wall:.0f} s wall",
        "",
    ]
    names = {"ours": "channelworks (recovery)", "theirs": "channels 4 + channels_redis"}
    for result in results:
        name = names.get(result["kind"], result["kind"])
        if "error" in result:
            lines.append(f"{name}: FAILED to run: {result['error']}")
            continue
        share = 100.0 * result["delivered"] / max(1, result["expected"])
        lines.append(
            f"{name}: delivered {result['delivered']}/{result['expected']} ({share:.2f}%), "
            f"duplicates shown {result['duplicates']}, out of order {result['out_of_order']}, "
            f"sent but reached nobody {result['reached_nobody']}"
            + (
                f"; Chromium pages {result['page_delivered']}/{result['sent'] * result['pages']}"
                if result["pages"]
                else ""
            )
            + f"; restart took {result['restart_seconds']:.1f} s"
        )
        cuts = ", ".join(
            f"{r['median']:.2f}/{r['max']:.2f}" if r["max"] != float("inf") else "never"
            for r in result["recovery"]
        )
        lines.append(f"  recovery after each cut (median/max s): {cuts}")
    ours = next((r for r in results if r.get("kind") == "ours" and "error" not in r), None)
    if ours is not None:
        met = (
            ours["delivered"] == ours["expected"]
            and ours["duplicates"] == 0
            and ours["out_of_order"] == 0
        )
        lines.append("")
        verdict = "PASS" if met else "FAIL"
        lines.append(f"targets (100.00% delivered, 0 duplicates, 0 out of order): {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--browsers", type=int, default=2, help="Chromium pages (ours)")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of publishing")
    parser.add_argument("--cut-every", type=float, default=10.0)
    parser.add_argument("--cut-for", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to wait at the end")
    parser.add_argument("--systems", default="ours,theirs", help="ours, theirs or both")
    args = parser.parse_args(argv)
    plan = Plan(
        subscribers=args.subscribers,
        browsers=args.browsers,
        rate=args.rate,
        duration=args.duration,
        cut_every=args.cut_every,
        cut_for=args.cut_for,
        restart_at=args.duration / 2 + args.cut_every / 2,
        settle=args.settle,
    )
    kinds = [k for k in args.systems.split(",") if k]
    began = time.time()
    start = began + 25  # servers and subscribers are up by then
    out: Any = mp.get_context("spawn").Queue()
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as workdir:
        children = [
            mp.get_context("spawn").Process(
                target=child, args=(kind, plan, start, str(Path(workdir) / kind), out)
            )
            for kind in kinds
        ]
        for process in children:
            process.start()
        results = [out.get(timeout=plan.duration + 600) for _ in children]
        for process in children:
            process.join(30)
    results.sort(key=lambda r: kinds.index(r["kind"]))
    print(report(results, plan, time.time() - began))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
