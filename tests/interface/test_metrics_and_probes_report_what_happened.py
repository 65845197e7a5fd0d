"""``/metrics`` counts what clients did; ``/healthz`` and ``/readyz`` answer on their own port."""

from __future__ import annotations

import httpx
from websockets.asyncio.client import connect

from channelworks.layers import RedisChannelLayer
from tests.interface.support import FakeWorker, InterfaceProcess
from tests.support.eventually import eventually_async
from tests.support.processes import metric

WS_IN = {"direction": "in", "protocol": "websocket"}
WS_OUT = {"direction": "out", "protocol": "websocket"}
HTTP_IN = {"direction": "in", "protocol": "http"}
HTTP_OUT = {"direction": "out", "protocol": "http"}


async def test_metrics_count_connections_messages_requests_and_handshakes(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    before = interface.metrics()
    assert metric(before, "channelworks_interface_connections") == 0
    assert metric(before, "channelworks_build_info", {"component": "interface"}) == 1
    assert "channelworks_layer_channel_full_total 0.0" in before
    async with FakeWorker(worker_layer) as worker:
        async with connect(interface.ws_url("/")) as ws:
            await ws.send("one")
            await ws.recv()
            await ws.send(b"two")
            await ws.recv()
            assert metric(interface.metrics(), "channelworks_interface_connections") == 1
        await worker.wait_for("websocket.disconnect", path="/")
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{interface.base_url}/")).status_code == 200

    async def settled() -> None:
        text = interface.metrics()
        assert metric(text, "channelworks_interface_connections") == 0
        # connect, two frames, disconnect in; accept and two echoes out
        assert metric(text, "channelworks_interface_messages_total", WS_IN) == 4
        assert metric(text, "channelworks_interface_messages_total", WS_OUT) == 3
        assert metric(text, "channelworks_interface_messages_total", HTTP_IN) == 1
        assert metric(text, "channelworks_interface_messages_total", HTTP_OUT) == 1
        assert metric(text, "channelworks_interface_http_requests_total", {"code": "200"}) == 1
        assert metric(text, "channelworks_interface_handshake_duration_seconds_count") == 1

    await eventually_async(settled, timeout=10)


def test_probes_answer_on_the_metrics_port(interface: InterfaceProcess) -> None:
    assert interface.probe("/healthz") == 200
    assert interface.probe("/readyz") == 200
    assert interface.probe("/nothing-here") == 404
    text = interface.metrics()
    assert "process_resident_memory_bytes" in text
