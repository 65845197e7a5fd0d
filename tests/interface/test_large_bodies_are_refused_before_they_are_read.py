"""A request body over ``CHANNELWORKS_INTERFACE_MAX_BODY_BYTES`` is refused while it arrives: a
``Content-Length`` over the limit gets a 413 before any of the body is sent, a chunked body is cut
off soon after it passes the limit, and ten concurrent 150 MB uploads leave the interface's
memory flat. Raw sockets against a real interface process; bodies are produced lazily, so the
test itself stays light."""

from __future__ import annotations

import concurrent.futures
import socket

from tests.interface.conftest import StartInterface
from tests.interface.support import InterfaceProcess, PeakRss
from tests.support.processes import metric

LIMIT = 960 * 1024
UPLOAD = 150 * 1024 * 1024
PIECE = b"x" * 65536


def _connect(interface: InterfaceProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", interface.port), timeout=10)


def _head(length_header: bytes) -> bytes:
    return b"POST /upload/ HTTP/1.1\r\nHost: example.test\r\n" + length_header + b"\r\n"


def _read_status(conn: socket.socket) -> bytes:
    received = b""
    while b"\r\n" not in received:
        data = conn.recv(4096)
        if not data:
            break
        received += data
    return received.split(b"\r\n", 1)[0]


def _upload(interface: InterfaceProcess, head: bytes, chunked: bool) -> tuple[int, bytes]:
    """Send ``head`` then up to 150 MB of body until the server stops taking it; return how many
    body bytes went out and the status line the server answered (b"" when it only closed)."""
    sent = 0
    with _connect(interface) as conn:
        conn.sendall(head)
        try:
            while sent < UPLOAD:
                piece = b"%x\r\n%s\r\n" % (len(PIECE), PIECE) if chunked else PIECE
                conn.sendall(piece)
                sent += len(PIECE)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        try:
            return sent, _read_status(conn)
        except (ConnectionResetError, TimeoutError):
            return sent, b""


def test_an_over_limit_content_length_is_answered_413_before_the_body_is_sent(
    interface: InterfaceProcess,
) -> None:
    with _connect(interface) as conn:
        conn.sendall(_head(b"Content-Length: %d\r\n" % UPLOAD))
        response = b""  # no body byte sent: the answer comes from the headers alone
        while data := conn.recv(4096):  # until the server closes
            response += data
    assert response.startswith(b"HTTP/1.1 413 Payload Too Large\r\n"), response
    assert response.endswith(b"Request body too large (the limit is 983040 bytes)\n")


def test_a_client_asking_to_continue_is_told_413_and_never_to_go_ahead(
    interface: InterfaceProcess,
) -> None:
    with _connect(interface) as conn:
        conn.sendall(_head(b"Content-Length: %d\r\nExpect: 100-continue\r\n" % UPLOAD))
        response = b""
        while data := conn.recv(4096):
            response += data
    assert response.startswith(b"HTTP/1.1 413 Payload Too Large\r\n"), response
    assert b"100 Continue" not in response


def test_a_chunked_body_is_cut_off_soon_after_the_limit(interface: InterfaceProcess) -> None:
    sent, status = _upload(interface, _head(b"Transfer-Encoding: chunked\r\n"), chunked=True)
    assert sent < LIMIT + 16 * 1024 * 1024, sent  # the limit plus what socket buffers hold
    assert status in (b"", b"HTTP/1.1 413 Payload Too Large"), status


def test_ten_concurrent_150_mb_uploads_leave_memory_flat(start_interface: StartInterface) -> None:
    interface = start_interface()
    rss = PeakRss(interface.process.pid)
    heads = [_head(b"Content-Length: %d\r\n" % UPLOAD)] * 5
    heads += [_head(b"Transfer-Encoding: chunked\r\n")] * 5
    try:
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            results = list(
                pool.map(lambda head: _upload(interface, head, b"chunked" in head), heads)
            )
    finally:
        growth = rss.stop()
    print(
        f"interface RSS {rss.before / 2**20:.1f} MiB before, {rss.peak / 2**20:.1f} MiB at "
        f"peak; body bytes the clients got out: {[sent for sent, _ in results]}"
    )
    assert all(sent < LIMIT + 16 * 1024 * 1024 for sent, _ in results), results
    assert growth < 30 * 1024 * 1024, (rss.before, rss.peak)
    refused = metric(
        interface.metrics(), "channelworks_interface_http_requests_total", {"code": "413"}
    )
    assert refused == 10
