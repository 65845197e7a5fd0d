"""An asyncio TCP proxy on 127.0.0.1 in front of one or more servers (as a Service in front of
interface pods), which a test or benchmark can cut: ``cut(seconds)`` closes every open
connection and refuses new ones (accepted, then closed at once) for ``seconds``, as a network
drop would. New connections go to the targets in turn; a target that refuses is skipped."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence

HOST = "127.0.0.1"
_CHUNK = 65536


class CuttableProxy:
    def __init__(self, targets: Sequence[tuple[str, int]]) -> None:
        self.targets = list(targets)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._down_until = 0.0
        self._turn = itertools.count()
        self.refused = 0  # connections refused while cut

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def cut(self, seconds: float = 0.0) -> int:
        """Close every open connection; refuse new ones for ``seconds``. Returns how many were
        open."""
        self._down_until = time.monotonic() + seconds
        writers, self._open = self._open, set()
        for writer in writers:
            _abort(writer)
        return len(writers) // 2

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> CuttableProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Ended quietly when its loop shuts down (asyncio would log the cancellation otherwise).
        with contextlib.suppress(asyncio.CancelledError):
            await self._forward(reader, writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            self.refused += 1
            _abort(writer)
            return
        upstream = await self._connect()
        if upstream is None:
            _abort(writer)
            return
        up_reader, up_writer = upstream
        pair = {writer, up_writer}
        self._open |= pair
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._open -= pair
            for each in pair:
                _abort(each)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.targets)):
            host, port = self.targets[next(self._turn) % len(self.targets)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            except (OSError, TimeoutError):
                continue
        return None


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    except (OSError, ConnectionError):
        pass
    finally:
        _abort(sink)


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
