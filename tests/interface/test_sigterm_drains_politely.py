"""SIGTERM: readiness fails first, sockets get 1012 spread over the window, in-flight HTTP is
answered, workers hear every disconnect, and the process exits before the grace period."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker, echo
from tests.support.eventually import eventually_async

# Until the drain delay ends the interface still listens: readiness must fail, health stay, and
# a late socket be told 1012 within it. 3 s leaves room for a busy machine (1.5 s was missed).
DRAIN_DELAY = 3.0


async def _closed_at(ws: Any) -> tuple[float, int | None]:
    """When the server closed ``ws`` (monotonic time) and with which code."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await ws.recv()
    return time.monotonic(), None if closed.value.rcvd is None else closed.value.rcvd.code


async def test_sigterm_fails_readiness_then_closes_sockets_1012_and_answers_http(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface(
        CHANNELWORKS_INTERFACE_DRAIN_DELAY=str(DRAIN_DELAY),
        CHANNELWORKS_INTERFACE_DRAIN_WINDOW="2",
        CHANNELWORKS_INTERFACE_GRACE_PERIOD="10",
    )
    answer_http = asyncio.Event()
    answering: list[asyncio.Task[None]] = []

    async def worker_logic(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
        if channel == "http.request":

            async def answer_later() -> None:
                await answer_http.wait()
                await worker.reply(message, {"status": 200, "content": b"answered"})

            answering.append(asyncio.ensure_future(answer_later()))
        else:
            await echo(worker, channel, message)

    async with (
        FakeWorker(worker_layer, worker_logic) as worker,
        httpx.AsyncClient() as client,
        contextlib.AsyncExitStack() as stack,
    ):
        sockets = [
            await stack.enter_async_context(connect(interface.ws_url(f"/s/{n}"))) for n in range(4)
        ]
        for ws in sockets:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        in_flight = asyncio.ensure_future(client.get(f"{interface.base_url}/slow"))
        await worker.wait_for("http.request", path="/slow")
        closes = [asyncio.ensure_future(_closed_at(ws)) for ws in sockets]

        terminated = time.monotonic()
        interface.terminate()
        await eventually_async(lambda: interface.probe("/readyz") == 503, timeout=DRAIN_DELAY - 0.1)
        assert not any(close.done() for close in closes), "readiness must fail before closing"
        assert interface.probe("/healthz") == 200

        # A socket opened while draining is told to go elsewhere at once.
        async with connect(interface.ws_url("/late/")) as late:
            _, late_code = await _closed_at(late)
        assert late_code == 1012

        results = await asyncio.wait_for(asyncio.gather(*closes), timeout=8)
        assert [code for _, code in results] == [1012] * 4
        offsets = sorted(at - terminated for at, _ in results)
        assert offsets[0] >= DRAIN_DELAY - 0.1  # after the drain delay
        assert offsets[-1] - offsets[0] >= 1.0  # spread over the window, not all at once
        assert offsets[-1] <= DRAIN_DELAY + 2 + 1.5  # within the window, give or take

        answer_http.set()
        response = await asyncio.wait_for(in_flight, timeout=5)
        assert response.status_code == 200 and response.content == b"answered"
        assert response.headers.get("connection") == "close"

        for n in range(4):
            (disconnected,) = await worker.wait_for("websocket.disconnect", path=f"/s/{n}")
            assert disconnected["code"] == 1012

    code = await asyncio.get_running_loop().run_in_executor(None, interface.process.wait, 10)
    assert code == 0
    assert time.monotonic() - terminated < 10 - 2
    log = interface.log()
    assert "draining" in log and "Traceback" not in log


async def test_requests_still_waiting_at_the_deadline_get_503_and_the_process_exits_in_time(
    start_interface: StartInterface,
) -> None:
    interface = start_interface(
        CHANNELWORKS_INTERFACE_DRAIN_DELAY="0",
        CHANNELWORKS_INTERFACE_DRAIN_WINDOW="0.5",
        CHANNELWORKS_INTERFACE_GRACE_PERIOD="5",
        CHANNELWORKS_INTERFACE_HTTP_TIMEOUT="60",
    )
    async with httpx.AsyncClient() as client:
        waiting = asyncio.ensure_future(client.get(f"{interface.base_url}/never-answered"))
        await asyncio.sleep(0.5)
        terminated = time.monotonic()
        interface.terminate()
        response = await asyncio.wait_for(waiting, timeout=6)
    assert response.status_code == 503
    code = await asyncio.get_running_loop().run_in_executor(None, interface.process.wait, 10)
    assert code == 0
    assert time.monotonic() - terminated < 5
