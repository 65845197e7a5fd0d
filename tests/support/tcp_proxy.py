"""A TCP proxy on 127.0.0.1 that the tests can make go silent, for faults a real server cannot
make on demand: a peer that stops answering without closing (as a vanished pod's address does).

``freeze()`` stops forwarding in both directions on every connection, open or new, while
keeping the sockets open; ``thaw()`` lets the bytes flow again; ``cut()`` closes every open
connection.
"""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType

HOST = "127.0.0.1"
_CHUNK = 65536
_POLL_SECONDS = 0.05


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._frozen = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> TcpProxy:
        self._spawn(self._accept)
        return self

    def freeze(self) -> None:
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                sock.close()

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            self._spawn(self._pump, client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            try:
                for sock in peers:
                    selector.register(sock, selectors.EVENT_READ)
                registered = True
            except (OSError, ValueError):  # cut or stopped before this thread got to it
                registered = False  # nothing to pump: both are closed below
            while registered and not self._stopping.is_set():
                if self._frozen.is_set():
                    self._stopping.wait(_POLL_SECONDS)
                    continue
                try:
                    ready = selector.select(_POLL_SECONDS)
                    for key, _ in ready:
                        source = key.fileobj
                        assert isinstance(source, socket.socket)
                        data = source.recv(_CHUNK)
                        if not data:
                            raise ConnectionError("closed")
                        peers[source].sendall(data)
                except (OSError, ValueError):
                    break
        for sock in peers:
            sock.close()
