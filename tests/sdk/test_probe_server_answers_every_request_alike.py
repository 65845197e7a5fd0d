"""The probe server every process serves on its metrics port (``channelworks.process.probes``;
the interface and the worker had one each, and they disagreed): ``HEAD`` gets the head without
a body (the worker's sent the body), a malformed request gets 400 (the interface's closed the
connection without a word), other methods 405, and ``/healthz`` / ``/readyz`` follow
``live()`` / ``ready()``. The operator serves its probes with it too (its own thread-based server
is gone): ``/readyz`` says the replica's role, a port without a registry does not serve
``/metrics``, and past the connection cap a new connection is closed at once while the probes keep
answering. Real sockets against the real server on loopback."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from channelworks.process import probes
from channelworks.process.probes import ProbeServer
from channelworks_operator import health
from channelworks_operator.metrics import Metrics


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def test_the_probes_answer_as_http_clients_expect() -> None:
    registry = CollectorRegistry()
    Counter("served", "requests served", registry=registry).inc()
    state = {"ready": False, "live": True}
    server = ProbeServer(
        "127.0.0.1", 0, registry, ready=lambda: state["ready"], live=lambda: state["live"]
    )
    port = await server.start()
    try:
        metrics = await _exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert metrics.startswith(b"HTTP/1.1 200 OK\r\n") and b"served_total 1.0" in metrics
        head = await _exchange(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        assert b"served_total" not in head and b"Content-Length: " in head
        assert (await _exchange(port, b"GET /readyz HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 503 ")
        state["ready"] = True
        assert (await _exchange(port, b"GET /readyz?x=1 HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 200 "
        )
        state["live"] = False
        assert (await _exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 503 "
        )
        assert (await _exchange(port, b"POST /readyz HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 405 "
        )
        assert (await _exchange(port, b"GET /nothing HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 404 "
        )
        assert (await _exchange(port, b"\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        assert (await _exchange(port, b"GET /" + b"x" * 10_000)).startswith(b"HTTP/1.1 400 ")
    finally:
        await server.close()


async def test_the_operators_probes_say_its_role() -> None:
    state = health.HealthState()
    registry = CollectorRegistry()
    Metrics(registry)
    metrics_server, health_server = health.servers(state, "127.0.0.1", 0, 0, registry)
    metrics_port, health_port = await metrics_server.start(), await health_server.start()
    try:
        starting = await _exchange(health_port, b"GET /readyz HTTP/1.1\r\n\r\n")
        assert starting.startswith(b"HTTP/1.1 503 ") and starting.endswith(b"\r\n\r\nstarting\n")
        state.role = health.STANDBY
        standby = await _exchange(health_port, b"GET /readyz HTTP/1.1\r\n\r\n")
        assert standby.startswith(b"HTTP/1.1 200 ") and standby.endswith(b"\r\n\r\nstandby\n")
        state.role = health.LEADER
        leader = await _exchange(metrics_port, b"GET /readyz HTTP/1.1\r\n\r\n")
        assert leader.endswith(b"\r\n\r\nleader\n")
        alive = await _exchange(health_port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert alive.startswith(b"HTTP/1.1 200 ") and alive.endswith(b"\r\n\r\n")
        no_metrics = await _exchange(health_port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert no_metrics.startswith(b"HTTP/1.1 404 ")
        metrics = await _exchange(metrics_port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert metrics.startswith(b"HTTP/1.1 200 ") and b"channelworks_build_info{" in metrics
    finally:
        await metrics_server.close()
        await health_server.close()


async def test_connections_past_the_cap_are_closed_and_the_probes_still_answer() -> None:
    server = probes.ProbeServer("127.0.0.1", 0, None, ready=lambda: True)
    port = await server.start()
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(probes.MAX_CONNECTIONS)]
    try:
        over_reader, over_writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(over_reader.read(), 5) == b"", "not closed at once"
        over_writer.close()
        for _, writer in idle[:1]:  # one slot frees: the probe is answered again
            writer.close()
            await writer.wait_closed()

        async def probe() -> bytes:
            while True:
                answer = await _exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n")
                if answer:
                    return answer
                await asyncio.sleep(0.01)

        assert (await asyncio.wait_for(probe(), 5)).startswith(b"HTTP/1.1 200 ")
    finally:
        for _, writer in idle:
            writer.close()
        await server.close()
