"""Behind a trusted proxy, workers see the real client address and scheme; otherwise not."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker, InterfaceProcess

FORWARDED = {
    "X-Forwarded-For": "203.0.113.7, 10.0.0.1",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "443",
}


@pytest.fixture(scope="module")
def interface_env() -> dict[str, str]:
    return {"CHANNELWORKS_INTERFACE_PROXY_HEADERS": "true"}


async def test_forwarded_client_and_scheme_reach_the_worker(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer) as worker:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{interface.base_url}/", headers=FORWARDED)
        headers = {**FORWARDED, "X-Forwarded-Host": "chat.example.com"}
        origin = Origin("https://chat.example.com")
        async with connect(interface.ws_url("/ws/"), additional_headers=headers, origin=origin):
            pass
        (request,) = await worker.wait_for("http.request", path="/")
        (connected,) = await worker.wait_for("websocket.connect", path="/ws/")
    assert response.status_code == 200
    assert request["client"] == ["203.0.113.7", 443]
    assert request["scheme"] == "https"
    assert connected["client"] == ["203.0.113.7", 443]
    assert connected["scheme"] == "wss"


async def test_without_the_setting_forwarded_headers_are_ignored(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface(CHANNELWORKS_INTERFACE_PROXY_HEADERS="false")
    async with FakeWorker(worker_layer) as worker:
        async with httpx.AsyncClient() as client:
            await client.get(f"{interface.base_url}/", headers=FORWARDED)
        async with connect(interface.ws_url("/ws/"), additional_headers=FORWARDED):
            pass
        (request,) = await worker.wait_for("http.request", path="/")
        (connected,) = await worker.wait_for("websocket.connect", path="/ws/")
    assert request["client"][0] == "127.0.0.1" and request["scheme"] == "http"
    assert connected["client"][0] == "127.0.0.1" and connected["scheme"] == "ws"
