"""Slowloris and connection floods: a request whose headers or body dribble in is answered 408 and
closed after ``HEADER_TIMEOUT`` / ``BODY_TIMEOUT`` (before, one stayed open past 100 s), an idle
keep-alive connection is closed, and connections over ``MAX_CONNECTIONS`` get a 503 with
``Retry-After`` while the others carry on. Raw sockets and real clients against real interface
processes."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from channelworks.layers import RedisChannelLayer
from tests.interface.conftest import StartInterface
from tests.interface.support import FakeWorker, InterfaceProcess
from tests.support.processes import metric


@pytest.fixture(scope="module")
def interface_env() -> dict[str, str]:
    return {
        "CHANNELWORKS_INTERFACE_HEADER_TIMEOUT": "1",
        "CHANNELWORKS_INTERFACE_BODY_TIMEOUT": "1.5",
        "CHANNELWORKS_INTERFACE_IDLE_TIMEOUT": "3",
    }


def _dribble(interface: InterfaceProcess, head: bytes, piece: bytes, limit: float) -> bytes:
    """Send ``head``, then ``piece`` every 0.2 s until the server closes (or ``limit`` seconds
    pass); everything the server sent."""
    with socket.create_connection(("127.0.0.1", interface.port), timeout=0.2) as conn:
        conn.sendall(head)
        received = b""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                data = conn.recv(4096)
            except TimeoutError:
                try:
                    conn.sendall(piece)
                except OSError:  # reset once the server gave up on us
                    return received
                continue
            except ConnectionResetError:
                return received
            if not data:
                return received
            received += data
    raise AssertionError(f"still open after {limit}s; got {received!r}")


def test_headers_that_dribble_in_get_408_and_a_close(interface: InterfaceProcess) -> None:
    started = time.monotonic()
    answer = _dribble(interface, b"GET /slow/ HTTP/1.1\r\nHost: x\r\n", b"X-a: b\r\n", limit=8)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert b"The request headers did not arrive in time" in answer
    assert time.monotonic() - started < 6


def test_a_body_that_dribbles_in_gets_408_and_a_close(interface: InterfaceProcess) -> None:
    head = b"POST /slow/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    answer = _dribble(interface, head, b"z" * 10, limit=8)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert b"The body did not arrive in time" in answer
    text = interface.metrics()
    assert metric(text, "channelworks_interface_refusals_total", {"reason": "read_timeout"}) >= 2
    assert metric(text, "channelworks_interface_http_requests_total", {"code": "408"}) >= 2


def test_an_idle_connection_is_closed_without_an_answer(interface: InterfaceProcess) -> None:
    assert _dribble(interface, b"", b"", limit=8) == b""


async def test_a_keep_alive_connection_serves_requests_until_it_idles(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer), httpx.AsyncClient() as client:
        for n in range(3):  # one connection, each request well within the header timeout
            response = await client.post(f"{interface.base_url}/keep/", content=b"%d" % n)
            assert response.text == f"echo:{n}"
            await asyncio.sleep(0.5)


def _exchange(conn: socket.socket, path: bytes) -> bytes:
    """One GET on an open connection; the whole (chunked) response."""
    conn.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    response = b""
    while not response.endswith(b"0\r\n\r\n"):
        data = conn.recv(4096)
        assert data, f"closed mid-response: {response!r}"
        response += data
    return response


async def test_a_keep_alive_connection_idles_for_idle_timeout_then_closes(
    interface: InterfaceProcess, worker_layer: RedisChannelLayer
) -> None:
    async with FakeWorker(worker_layer):
        conn = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", interface.port))
        with conn:
            first = await asyncio.to_thread(_exchange, conn, b"/idle/1")
            await asyncio.sleep(1.8)  # longer than HEADER_TIMEOUT, within IDLE_TIMEOUT
            second = await asyncio.to_thread(_exchange, conn, b"/idle/2")
            idle_since = time.monotonic()
            conn.settimeout(10)
            assert await asyncio.to_thread(conn.recv, 4096) == b""  # closed, without a word
            idled = time.monotonic() - idle_since
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
    assert 2.5 < idled < 6, idled


async def test_connections_over_the_cap_get_503_and_the_others_carry_on(
    start_interface: StartInterface, worker_layer: RedisChannelLayer
) -> None:
    interface = start_interface(CHANNELWORKS_INTERFACE_MAX_CONNECTIONS="4")
    async with FakeWorker(worker_layer):
        sockets = [await connect(interface.ws_url(f"/cap/{n}")) for n in range(3)]
        idle = socket.create_connection(("127.0.0.1", interface.port))
        try:
            async with httpx.AsyncClient() as client:
                refused = await client.get(f"{interface.base_url}/over/")
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            with pytest.raises(InvalidStatus) as websocket_refused:
                await connect(interface.ws_url("/cap/over"))
            assert websocket_refused.value.response.status_code == 503
            for ws in sockets:  # the connections already open are not touched
                await ws.send("still here")
                assert await ws.recv() == "still here"
            text = interface.metrics()
            assert metric(text, "channelworks_interface_tcp_connections") == 4
            labels = {"reason": "connection_limit"}
            assert metric(text, "channelworks_interface_refusals_total", labels) == 2
        finally:
            idle.close()
            for ws in sockets:
                await ws.close()
        async with httpx.AsyncClient() as client:  # room again
            response = await client.post(f"{interface.base_url}/after/", content=b"ok")
        assert response.text == "echo:ok"
