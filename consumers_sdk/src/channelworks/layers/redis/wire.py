"""Sending commands with as little client-side work per call as redis-py allows.

redis-py's client takes a pooled connection for every call, wraps each write in
``asyncio.wait_for`` (a task per call on Python 3.11) and each read in its own timeout, and a
pipeline adds an object and a retry wrapper on top: on the development machine a one-command
pipeline cost about 130 us of CPU and a plain client call about 80, against about 30 for the
same exchange on a connection used directly. A ``Line`` is one connection of its own to a
standalone server, made without a socket timeout; each exchange (any number of commands written
at once, then their replies read in order) is bounded by one ``asyncio.timeout`` instead.
Replies pass through the client's own response callbacks, so callers see what the client's
methods would return. On a Redis Cluster, ``cluster.RoutedLine`` does the same on whichever
master serves a hash tag.
"""

from __future__ import annotations

import abc
import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

Call = tuple[Any, ...]
Caller = Callable[[Sequence[Call]], Awaitable[list[Any]]]
__all__ = ["ACK_WITHIN", "Call", "Caller", "Exchange", "Line", "Watcher", "pack_commands"]
ACK_WITHIN = 0.25  # seconds within which a live peer's kernel acknowledges (a probe, data)
_TCP_INFO = getattr(socket, "TCP_INFO", None)  # Linux
# struct tcp_info (linux/tcp.h): eight one-byte fields, tcpi_probes the fourth (keepalive probes
# sent and not answered), then 32-bit fields: tcpi_unacked at byte 24, tcpi_last_data_sent at
# 44, tcpi_last_data_recv at 52 and tcpi_last_ack_recv at 56 (times in milliseconds).
_TCP_INFO_SIZE = 60
_PROBES_AT = 3
_UNACKED = struct.Struct("=I")
_UNACKED_AT = 24
_LAST_SENT_AT = 44
_LAST_RECEIVED = struct.Struct("=II")
_LAST_RECEIVED_AT = 52


class Watcher(Protocol):
    """What a ``Line`` tells about its exchanges (``watch.ServerWatch``)."""

    def watch(self, line: Line, server: Hashable, blocking: bool = False) -> None: ...

    def unwatch(self, line: Line) -> None: ...


def pack_commands(calls: Sequence[Call]) -> list[bytes]:
    """``calls`` in Redis' wire format (arrays of bulk strings), as one buffer.

    redis-py's packer takes more argument types; this one takes what the layer sends (bytes,
    str, int, float) at well under half the CPU, which counts as every message goes through it.
    """
    parts: list[bytes] = []
    append = parts.append
    for call in calls:
        append(b"*%d\r\n" % len(call))
        for arg in call:
            kind = type(arg)
            if kind is bytes:
                data = arg
            elif kind is str:
                data = arg.encode()
            elif kind is int:
                data = b"%d" % arg
            elif kind is float:
                data = repr(arg).encode()
            else:
                raise redis_errors.DataError(
                    f"cannot send a {kind.__name__} to Redis: use bytes, str, int or float"
                )
            append(b"$%d\r\n%b\r\n" % (len(data), data))
    return [b"".join(parts)]


class Exchange(abc.ABC):
    """A dedicated connection: any number of calls written at once, their replies read back."""

    def __init__(self) -> None:
        self._last_call: Call = ()
        self._last_packed: list[bytes] = []

    def pack(self, calls: Sequence[Call]) -> list[bytes]:
        """``calls`` in the wire format, to pack a command sent again and again only once."""
        return pack_commands(calls)

    @abc.abstractmethod
    async def call(self, calls: Sequence[Call], packed: list[bytes] | None = None) -> list[Any]:
        """Write ``calls`` at once (``packed``: as ``pack(calls)`` gave them), read one reply
        each; an error reply comes back in place."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def one(self, *call: Any) -> Any:
        """One command (a blocking read, say); an error reply is raised."""
        if call != self._last_call:
            self._last_call, self._last_packed = call, self.pack([call])
        (reply,) = await self.call([call], self._last_packed)
        if isinstance(reply, redis_errors.ResponseError):
            raise reply
        return reply


class Line(Exchange):
    """One dedicated connection to one server; one exchange at a time. With a ``watcher``,
    each exchange is reported to it (as with ``server``; ``blocking``: a line for blocking
    reads), so it can be cut if that server vanishes."""

    def __init__(
        self,
        client: aioredis.Redis,
        timeout: float,
        watcher: Watcher | None = None,
        server: Hashable = None,
        blocking: bool = False,
    ) -> None:
        super().__init__()
        self._watcher = watcher
        self._server = server
        self._blocking = blocking
        pool = client.connection_pool
        options = {**pool.connection_kwargs, "socket_timeout": None}
        self._connection = pool.connection_class(**options)
        self._callbacks = client.response_callbacks
        self._timeout = timeout
        self._scope: asyncio.Timeout | None = None  # of the exchange in flight
        self._cut_because: str | None = None

    async def call(self, calls: Sequence[Call], packed: list[bytes] | None = None) -> list[Any]:
        """See ``Exchange.call``. A connection failure, a reply later than ``timeout`` or a
        ``cut`` raises (and drops the connection, which the next call makes again)."""
        connection = self._connection
        replies: list[Any] = []
        watcher = self._watcher
        if watcher is not None:
            watcher.watch(self, self._server, self._blocking)
        try:
            async with asyncio.timeout(self._timeout) as self._scope:
                await connection.send_packed_command(
                    packed if packed is not None else pack_commands(calls)
                )
                for call in calls:
                    try:
                        # No per-read timeout (the connection has no socket timeout either):
                        # with one, redis-py answers None for a socket that timed out
                        # (ETIMEDOUT from TCP_USER_TIMEOUT or keepalive) instead of raising.
                        reply = await connection.read_response()
                    except redis_errors.ResponseError as error:
                        replies.append(error)
                        continue
                    callback = self._callbacks.get(call[0])
                    replies.append(reply if callback is None else callback(reply))
        except TimeoutError:
            await connection.disconnect(nowait=True)
            cause, self._cut_because = self._cut_because, None
            if cause is not None:
                raise redis_errors.ConnectionError(cause) from None
            raise redis_errors.TimeoutError(
                f"Redis did not answer within {self._timeout:.0f}s"
            ) from None
        finally:
            self._scope = self._cut_because = None
            if watcher is not None:
                watcher.unwatch(self)
        return replies

    def silent_for(self) -> float:
        """Seconds this connection has received nothing (no data, no acknowledgement) while it
        owes TCP an answer: to a keepalive probe, or for data written over ``ACK_WITHIN`` ago;
        0 when it owes none, or where TCP does not tell (not Linux, a Unix socket, not
        connected)."""
        writer = getattr(self._connection, "_writer", None)  # redis-py keeps its socket there
        if writer is None or _TCP_INFO is None:
            return 0.0
        sock = writer.get_extra_info("socket")
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return 0.0
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
        except OSError:
            return 0.0
        if len(info) < _TCP_INFO_SIZE:
            return 0.0
        (unacked,) = _UNACKED.unpack_from(info, _UNACKED_AT)
        (last_sent,) = _UNACKED.unpack_from(info, _LAST_SENT_AT)
        if not info[_PROBES_AT] and not (unacked and last_sent >= ACK_WITHIN * 1000):
            return 0.0
        last_data, last_ack = _LAST_RECEIVED.unpack_from(info, _LAST_RECEIVED_AT)
        return min(int(last_data), int(last_ack)) / 1000

    def cut(self, because: str) -> None:
        """End the exchange in flight now (its server is gone): it raises ``ConnectionError``
        with ``because``. Nothing happens when no exchange is in flight."""
        scope = self._scope
        if scope is not None and not scope.expired():
            self._cut_because = because
            scope.reschedule(asyncio.get_running_loop().time())

    async def close(self) -> None:
        await self._connection.disconnect(nowait=True)
