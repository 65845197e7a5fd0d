"""SIGTERM to one of two interface processes, as Kubernetes does on a rollout: its sockets are
closed with 1012 (service restart: reconnect now), the HTTP request it was waiting on is still
answered, it exits 0 in time, and the other interface process carries on."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.dataplane import processes
from tests.support.redis_servers import RedisClusterNodes

DRAIN_DELAY = 1.0
DRAIN_WINDOW = 2.0
GRACE_PERIOD = 15.0
SLOW_REQUEST_SECONDS = 4.0  # still running when the sockets are closed


@pytest.fixture
def stack(
    redis_cluster: RedisClusterNodes, chat_db: Path, tmp_path: Path
) -> Iterator[processes.Stack]:
    env = {
        "CHANNELWORKS_INTERFACE_DRAIN_DELAY": str(DRAIN_DELAY),
        "CHANNELWORKS_INTERFACE_DRAIN_WINDOW": str(DRAIN_WINDOW),
        "CHANNELWORKS_INTERFACE_GRACE_PERIOD": str(GRACE_PERIOD),
    }
    with processes.running_stack(
        processes.CHAT,
        chat_db,
        redis_cluster.url,
        tmp_path,
        interfaces=2,
        workers=2,
        settings="tests.dataplane.testbed.settings",
        env=env,
    ) as running:
        yield running


async def test_sigterm_closes_sockets_with_1012_and_answers_in_flight_http(
    stack: processes.Stack,
) -> None:
    leaving, staying = stack.interfaces
    async with asyncio.timeout(120):
        sockets = [await connect(leaving.ws_url("/echo/")) for _ in range(5)]
        survivor = await connect(staying.ws_url("/echo/"))
        for ws in [*sockets, survivor]:  # every socket is up and answered
            await ws.send(json.dumps({"n": 0}))
            assert json.loads(await ws.recv())["n"] == 0
        async with httpx.AsyncClient(base_url=leaving.base_url, timeout=60) as client:
            request = asyncio.create_task(
                client.get("/slow/", params={"seconds": str(SLOW_REQUEST_SECONDS)})
            )
            await asyncio.sleep(0.5)  # the request is with a worker now
            signalled = time.monotonic()
            leaving.send_signal(signal.SIGTERM)

            async def closed(ws: object) -> tuple[int | None, float]:
                try:
                    await ws.recv()  # type: ignore[attr-defined]
                except ConnectionClosed as error:
                    code = error.rcvd.code if error.rcvd is not None else None
                    return code, time.monotonic() - signalled
                raise AssertionError("a frame came instead of a close")

            closes = await asyncio.gather(*(closed(ws) for ws in sockets))
            response = await request
        code = await asyncio.to_thread(processes.wait_for_exit, leaving, GRACE_PERIOD)
        await survivor.send(json.dumps({"n": 1}))
        still_served = json.loads(await survivor.recv())
        await survivor.close()
    assert [close_code for close_code, _ in closes] == [1012] * 5
    latest = max(after for _, after in closes)
    assert latest <= DRAIN_DELAY + DRAIN_WINDOW + 2.0, f"last socket closed after {latest:.1f}s"
    assert response.status_code == 200 and response.text == f"slept {SLOW_REQUEST_SECONDS}"
    assert code == 0
    assert still_served["n"] == 1
