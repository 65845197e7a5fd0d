"""The probe server every process serves on its metrics port (``channelworks.process.probes``;
the interface and the worker had one each, and they disagreed): ``HEAD`` gets the head without
a body (the worker's sent the body), a malformed request gets 400 (the interface's closed the
connection without a word), other methods 405, and ``/healthz`` / ``/readyz`` follow
``live()`` / ``ready()``. Real sockets against the real server on loopback."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from channelworks.process.probes import ProbeServer


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
