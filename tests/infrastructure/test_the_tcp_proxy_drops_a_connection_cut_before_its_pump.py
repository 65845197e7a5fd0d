"""The tests' TCP proxy (tests/support/tcp_proxy.py): a connection cut (or the proxy stopped)
before its pump thread got to it is dropped quietly. It raised ``ValueError: Invalid file
descriptor: -1`` in that thread, which pytest reported as an unhandled thread exception in a
fresh-clone run (tests/operator, the leader whose renewal hangs)."""

import socket
import threading

from tests.support.tcp_proxy import TcpProxy


def test_a_pair_closed_before_its_pump_starts_is_dropped_without_an_error():
    raised: list[BaseException] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: raised.append(args.exc_value)
    client, client_peer = socket.socketpair()
    upstream, upstream_peer = socket.socketpair()
    proxy = TcpProxy("127.0.0.1", 9)  # never started: only its pump is used
    try:
        client.close()  # what cut() does while the pump thread is being started
        upstream.close()
        pump = threading.Thread(target=proxy._pump, args=(client, upstream))
        pump.start()
        pump.join(timeout=5)
        assert not pump.is_alive()
    finally:
        threading.excepthook = hook
        proxy.stop()
        client_peer.close()
        upstream_peer.close()
    assert raised == []
