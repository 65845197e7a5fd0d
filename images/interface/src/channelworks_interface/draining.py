"""The SIGTERM sequence: leave the load balancer first, then close everything politely, then exit.

t = 0                 ``/readyz`` fails; new WebSocket handshakes are closed with 1012 at once;
                      HTTP is still answered (clients may reach us until endpoints update).
t = drain_delay       stop listening; close open sockets with 1012, spread evenly over
                      ``drain_window`` (so clients do not all reconnect elsewhere at once).
after the window      wait for in-flight HTTP to be answered and every socket's disconnect to
                      reach the layer (queued ones included), close the layer, stop.
t = exit_deadline     (grace period minus a margin) whatever is left: waiting HTTP requests get
                      503, sockets 1012, and the process stops regardless (this starts a second
                      before the deadline, so the answers go out in time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from channelworks_interface.config import LAST_WORDS_SECONDS, InterfaceConfig
from channelworks_interface.connections import Connections
from channelworks_interface.disconnects import DisconnectOutbox
from channelworks_interface.limits import CloseCode

logger = logging.getLogger(__name__)


class Drainer:
    """Runs the sequence above once; ``begin()`` is what the SIGTERM handler calls."""

    def __init__(
        self,
        config: InterfaceConfig,
        connections: Connections,
        disconnects: DisconnectOutbox,
        stop_listening: Callable[[], Awaitable[None]],
        finish: Callable[[], Awaitable[None]],
        stop: Callable[[], None],
    ) -> None:
        self._config = config
        self._connections = connections
        self._disconnects = disconnects
        self._stop_listening = stop_listening
        self._finish = finish  # release resources (the layer) once all is sent
        self._stop = stop  # stop the server; the process exits after
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    def begin(self) -> None:
        """Start draining; a second call (a second SIGTERM or SIGINT) stops at once."""
        if self._task is not None:
            logger.warning("second stop signal: stopping now")
            self._stop()
            return
        self._connections.draining = True
        logger.info(
            "draining: readiness off, closing %d sockets over %gs after %gs, exit within %gs",
            len(self._connections.sockets),
            self._config.drain_window,
            self._config.drain_delay,
            self._config.exit_deadline,
        )
        self._task = asyncio.ensure_future(self._run())

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._config.exit_deadline - LAST_WORDS_SECONDS):
                await self._drain()
        except TimeoutError:
            logger.warning(
                "exit deadline (%gs) reached with %d sockets and %d HTTP requests open; "
                "answering them now",
                self._config.exit_deadline,
                len(self._connections.sockets),
                self._connections.http_in_flight,
            )
            await self._last_words()
        except Exception:
            logger.exception("draining failed; stopping")
        finally:
            self._disconnects.give_up()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._finish(), LAST_WORDS_SECONDS / 2)
            logger.info("drained in %.1fs; stopping", time.monotonic() - started)
            self._stop()

    async def _drain(self) -> None:
        await asyncio.sleep(self._config.drain_delay)
        await self._stop_listening()
        self._connections.closing_sockets = True
        sockets = list(self._connections.sockets)
        window = self._config.drain_window
        began = time.monotonic()
        for index, socket in enumerate(sockets):
            due = began + window * index / len(sockets)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if socket in self._connections.sockets:
                await socket.close_for_drain(CloseCode.SERVICE_RESTART)
        # Sockets still in their handshake when the window began (new ones are refused).
        for socket in list(self._connections.sockets):
            await socket.close_for_drain(CloseCode.SERVICE_RESTART)
        await self._connections.wait_idle()
        await self._disconnects.wait_empty()

    async def _last_words(self) -> None:
        self._connections.deadline.set()
        for socket in list(self._connections.sockets):
            with contextlib.suppress(Exception):
                await socket.close_for_drain(CloseCode.SERVICE_RESTART)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connections.wait_idle(), LAST_WORDS_SECONDS / 2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._disconnects.wait_empty(), LAST_WORDS_SECONDS / 4)
