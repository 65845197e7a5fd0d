"""The interface reports its open WebSockets and its CPU into the channel layer every few seconds,
under its host (pod) name, and 0 once it drains: what the operator's interface autoscaler adds
up (``load_reports``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

from websockets.asyncio.client import connect

from channelworks.layers import RedisChannelLayer
from channelworks_interface.load_report import EVERY_SECONDS, CpuMeter
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker, echo
from tests.support.eventually import eventually_async


async def test_open_websockets_are_reported_under_the_pod_name(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface(CHANNELWORKS_INTERFACE_DRAIN_DELAY="3")
    member = socket.gethostname()

    async def reported(count: int) -> bool:
        reports = await worker_layer.load_reports()
        return member in reports and reports[member].connections == count

    async with FakeWorker(worker_layer), contextlib.AsyncExitStack() as stack:
        await eventually_async(lambda: reported(0), timeout=EVERY_SECONDS + 5)
        sockets = [
            await stack.enter_async_context(connect(interface.ws_url(f"/s/{n}"))) for n in range(3)
        ]
        for ws in sockets:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        await eventually_async(lambda: reported(3), timeout=EVERY_SECONDS + 5)
        await sockets[0].close()
        await sockets[1].close()
        await eventually_async(lambda: reported(1), timeout=EVERY_SECONDS + 5)
        # Draining: 0 at once, while the last socket is still open (it is about to reconnect to
        # a pod that counts it; counting it here too would ask for pods the app does not need).
        interface.terminate()
        await eventually_async(lambda: reported(0), timeout=2)
        assert interface.probe("/readyz") == 503  # still draining: the 0 came before the exit
        assert (await worker_layer.load_reports())[member].cpu_percent == 0.0


async def test_a_busy_interface_reports_its_cpu(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    """Idle, the process reports a few percent of a core; with sockets sending as fast as they
    can (no pacing limit) it reports clearly more: what the autoscaler's CPU trigger reads."""
    # The frames get no reply and pile up on the channel: a capacity they cannot reach in the
    # test's few seconds, or a fast run fills the default 100 and the sockets close with 1013
    # (channel full) before the busy report.
    interface = start_interface(
        CHANNELWORKS_INTERFACE_MESSAGE_RATE="1000000",
        CHANNELWORKS_INTERFACE_MESSAGE_BURST="100000",
        CHANNELWORKS_LAYER_CAPACITY="1000000",
    )
    member = socket.gethostname()
    seen: list[float] = []

    async def cpu_reported(count: int) -> bool:
        report = (await worker_layer.load_reports()).get(member)
        cpu = None if report is None else report.cpu_percent
        if cpu is not None and (not seen or cpu != seen[-1]):
            seen.append(cpu)
        return len(seen) >= count

    async def take(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "websocket.connect":  # accept; frames get no reply: the interface's
            await echo(worker, channel, message)  # own receiving is what is measured

    async with FakeWorker(worker_layer, take), contextlib.AsyncExitStack() as stack:
        await eventually_async(lambda: cpu_reported(2), timeout=3 * EVERY_SECONDS + 5)
        idle = seen[-1]  # the first report covers start-up; the second is idle
        sockets = [
            await stack.enter_async_context(connect(interface.ws_url(f"/s/{n}"))) for n in range(8)
        ]

        async def chatter(ws: object) -> None:
            deadline = time.monotonic() + 2.2 * EVERY_SECONDS
            while time.monotonic() < deadline:
                await ws.send("x" * 2048)  # type: ignore[attr-defined]

        await asyncio.gather(*(chatter(ws) for ws in sockets))
        await eventually_async(lambda: cpu_reported(len(seen) + 1), timeout=EVERY_SECONDS + 5)
    busy = max(seen[2:])
    assert idle < 10, f"idle interface reported {idle:.1f}% CPU"
    # 22% against 0.2% idle at a load average of 20 on 2 cores (the senders were starved too)
    assert busy > max(2 * idle, idle + 5), f"busy: {seen[2:]}% CPU (idle {idle:.1f}%)"


def test_the_cpu_meter_is_cpu_time_over_wall_time() -> None:
    clocks = {"cpu": 10.0, "wall": 100.0}
    meter = CpuMeter(cpu=lambda: clocks["cpu"], wall=lambda: clocks["wall"])
    clocks["cpu"] += 1.5
    clocks["wall"] += 5.0
    assert meter.percent() == 30.0  # 1.5 s of CPU in 5 s
    clocks["wall"] += 5.0
    assert meter.percent() == 0.0  # idle since
    assert meter.percent() == 0.0  # no time passed: no division by zero
