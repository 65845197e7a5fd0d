"""Noticing that a Redis server stopped answering while exchanges wait on it.

On a pod network the address of a pod that died or was replaced does not refuse anything: its
packets go unanswered, and an exchange waiting on it would wait for its whole timeout (15 s).
Every ``wire.Line`` made with a ``ServerWatch`` reports its exchanges here. While any is in
flight, the watch looks every quarter of ``connect_timeout``: a server with an exchange waiting
longer than ``connect_timeout`` (and no answer to a ping within that time) is pinged on a
connection of its own; if the ping is not answered within twice ``connect_timeout`` (to connect,
then to answer) the server is taken for gone, every exchange waiting on it is cut (it raises
``ConnectionError`` at once, and its caller retries on a new connection), and ``on_gone`` is
told (a cluster reads its slot map again).

A server that answers the ping is there, but one connection to it may still be dead: behind a
Service address, a connection made to a pod that was replaced goes unanswered while new ones
reach the new pod. Redis runs commands in the order they arrive, so a non-blocking exchange
written before a ping that was answered should have had its reply too: one still waiting
``connect_timeout`` after that answer is cut, and with it the blocking reads (``blocking=True``,
which may rightly wait) that were waiting on that server since before the ping: they are issued
again on new connections.

A blocking read alone on a dead connection shows nothing of the kind: the server answers the
ping (on a connection made after the replacement, to the new pod) and the read may rightly
wait. TCP can tell: every connection is probed by TCP keepalive once idle for
``keepalive_seconds``, and a live peer's kernel answers a probe, or acknowledges data, at once.
So an exchange whose connection has received nothing for ``silent_after`` (the keepalive time
plus ``wire.ACK_WITHIN``) while a probe or written data waited for an answer
(``Line.silent_for``) is cut, whatever its kind. Otherwise a dead connection is ended by TCP
itself (``TCP_USER_TIMEOUT``, see ``SocketSettings``) or by its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Hashable

from redis import exceptions as redis_errors

from channelworks.layers.redis.wire import Line

logger = logging.getLogger(__name__)
__all__ = ["ServerWatch"]
_FAILURES = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


def _label(server: Hashable) -> str:
    if isinstance(server, tuple) and len(server) == 2:
        return f"{server[0]}:{server[1]}"
    return str(server)


class ServerWatch:
    """See the module docstring; one per event loop and set of servers."""

    def __init__(
        self,
        connect_timeout: float,
        probe_line: Callable[[Hashable], Line],
        on_gone: Callable[[Hashable], None] = lambda server: None,
        silent_after: float = math.inf,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._silent_after = silent_after
        self._probe_line = probe_line  # a new connection to a server, for its pings
        self._on_gone = on_gone
        # line -> server, since when, whether the exchange is a blocking read
        self._in_flight: dict[Line, tuple[Hashable, float, bool]] = {}
        self._suspects: dict[Line, tuple[float, float]] = {}  # line -> its start, cut after
        self._answered_at: dict[Hashable, float] = {}  # a server's last answer to a ping
        self._probes: dict[Hashable, Line] = {}
        self._checks: dict[Hashable, asyncio.Task[None]] = {}  # pings under way, per server
        self._task: asyncio.Task[None] | None = None

    def watch(self, line: Line, server: Hashable, blocking: bool = False) -> None:
        """An exchange with ``server`` starts on ``line``: cut it if that server vanishes."""
        self._in_flight[line] = (server, time.monotonic(), blocking)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    def unwatch(self, line: Line) -> None:
        self._in_flight.pop(line, None)

    async def forget(self, kept: set[Hashable]) -> None:
        """Close the ping connections of servers not in ``kept`` (they left)."""
        for server in [server for server in self._probes if server not in kept]:
            self._answered_at.pop(server, None)
            await self._probes.pop(server).close()

    async def close(self) -> None:
        tasks = [task for task in [self._task, *self._checks.values()] if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._checks.clear()
        await self.forget(set())

    async def _watch(self) -> None:
        try:
            while self._in_flight:
                await asyncio.sleep(self._connect_timeout / 4)
                self._cut_silent()
                self._cut_suspects()
                since = time.monotonic() - self._connect_timeout
                waiting = {
                    server
                    for server, start, _ in self._in_flight.values()
                    if start < since and self._answered_at.get(server, -math.inf) < since
                }
                # Each ping runs on its own: the cuts above go on while one waits (2 s at most).
                loop = asyncio.get_running_loop()
                for server in waiting - self._checks.keys():
                    self._checks[server] = loop.create_task(self._check(server))
            self._suspects.clear()
        finally:
            self._task = None

    async def _check(self, server: Hashable) -> None:
        try:
            await self._ping(server)
        finally:
            self._checks.pop(server, None)

    async def _ping(self, server: Hashable) -> None:
        probe = self._probes.get(server)
        if probe is None:
            probe = self._probes[server] = self._probe_line(server)
        pinged_at = time.monotonic()
        try:
            # Bounded here: a ping connection made before the server vanished gets no answer
            # and no error either (until TCP gives up), and the watch waits on it.
            await asyncio.wait_for(probe.one("PING"), 2 * self._connect_timeout)
        except redis_errors.ResponseError:
            pass  # it answers (NOAUTH, LOADING...): the server is there
        except TimeoutError:
            limit = 2 * self._connect_timeout
            await self._gone(server, f"{_label(server)} stopped answering (no PONG in {limit:g}s)")
            return
        except _FAILURES as error:
            await self._gone(server, f"{_label(server)} stopped answering ({error})")
            return
        answered_at = self._answered_at[server] = time.monotonic()
        for line, (waited_on, start, blocking) in self._in_flight.items():
            if waited_on == server and start < pinged_at and not blocking:
                self._suspects.setdefault(line, (start, answered_at + self._connect_timeout))

    def _cut_silent(self) -> None:
        """Cut the exchanges whose connection received nothing for ``silent_after`` while a
        TCP keepalive probe or written data waited for an answer."""
        for line, (server, _, _) in list(self._in_flight.items()):
            silent = line.silent_for()
            if silent >= self._silent_after:
                label = _label(server)
                logger.warning("a connection to Redis node %s answered nothing; dropped", label)
                line.cut(f"a connection to {label} answered nothing for {silent:.1f}s")

    def _cut_suspects(self) -> None:
        """Cut the non-blocking exchanges still waiting well after their server answered a
        ping sent after them: their connection is dead, not the server."""
        now = time.monotonic()
        for line, (start, cut_after) in list(self._suspects.items()):
            entry = self._in_flight.get(line)
            if entry is None or entry[1] != start:
                del self._suspects[line]  # that exchange ended
            elif now >= cut_after:
                del self._suspects[line]
                server = _label(entry[0])
                logger.warning("a connection to Redis node %s stopped answering; dropped", server)
                cause = f"a connection to {server} stopped answering (the node answers others)"
                line.cut(cause)
                # Its blocking reads from before that ping likely went the same way (connections
                # to a pod that was replaced): they are issued again on new connections.
                answered_at = cut_after - self._connect_timeout
                for other, (waited_on, other_start, blocking) in list(self._in_flight.items()):
                    if blocking and waited_on == entry[0] and other_start < answered_at:
                        other.cut(cause)

    async def _gone(self, server: Hashable, cause: str) -> None:
        probe = self._probes.pop(server, None)
        self._answered_at.pop(server, None)
        if probe is not None:
            await probe.close()
        logger.warning("Redis node %s; its connections are dropped", cause)
        self._on_gone(server)
        for line, (waited_on, _, _) in list(self._in_flight.items()):
            if waited_on == server:
                line.cut(cause)
