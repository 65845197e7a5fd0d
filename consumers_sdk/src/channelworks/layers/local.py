"""``LocalChannelLayer``: several processes of one machine share a channel layer, without Redis.

The state lives in one small broker process (:mod:`channelworks.layers.local_broker`) that the
processes reach over a Unix domain socket. The first process that finds no broker starts one
(under a file lock, so never two); it exits by itself once it has had no client for
``broker_idle_timeout`` seconds and holds no unexpired message. Each event loop of a process has
one connection, on which concurrent calls are multiplexed; blocking receives wait in the broker.

Work handed out by :meth:`LocalChannelLayer.work_receiver` stays the broker's until it is acked:
when the process that took it dies, the broker sees its connection close and queues the message
again, for another receiver. Plain ``receive``/``receive_many`` are at-most-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from channelworks.exceptions import ChannelFull, ConfigurationError, LayerConnectionError
from channelworks.layers import codec, naming
from channelworks.layers.base import ChannelworksLayer, WorkReceiver
from channelworks.layers.config import LAYER_KEYS, layer_config
from channelworks.layers.local_client import (
    BrokerConnection,
    ConnectOptions,
    check_socket_path,
    connect,
    default_socket_path,
    hello_for,
)
from channelworks.layers.ordering import Delivery, KeyedDispatcher, ordering_key
from channelworks.layers.stats import ChannelStats, QueueStats

logger = logging.getLogger(__name__)
DEFAULT_BROKER_IDLE_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
_LAYER_KEYS = frozenset(LAYER_KEYS)
_OWN_KEYS = ("path", "autostart", "broker_idle_timeout", "connect_timeout")
_OVERDUE_CHECK_SECONDS = 0.1  # how often held (out-of-order) messages are looked at
_TICK_SECONDS = 0.5  # a waiting get() wakes at least this often to release overdue messages
_receiver_ids = itertools.count(1)


def _number(name: str, value: Any, minimum: float, inclusive: bool) -> float:
    valid = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (value >= minimum if inclusive else value > minimum)
    )
    if not valid:
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise ConfigurationError(f"{name} must be a number {bound}, got {value!r}")
    return float(value)


class LocalChannelLayer(ChannelworksLayer):
    """The full layer API shared by the processes of one machine through a local broker.

    ``CONFIG`` takes the keys of the other layers (``prefix``, ``capacity``, ``channel_capacity``,
    ``expiry``, ``group_expiry``, ``max_message_size``; ``hosts`` is ignored) plus ``path`` (the
    broker's Unix socket; default ``$XDG_RUNTIME_DIR/channelworks/<prefix>.sock``, else
    ``<tmp>/channelworks-<uid>/<prefix>.sock``), ``autostart`` (start the broker when none
    listens; default True), ``broker_idle_timeout`` (seconds a started broker lingers without
    clients; default 60, 0 = forever) and ``connect_timeout`` (default 10 seconds).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        autostart: bool = True,
        broker_idle_timeout: float = DEFAULT_BROKER_IDLE_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        hosts: Any = None,
        **config: Any,
    ) -> None:
        unknown = sorted(set(config) - _LAYER_KEYS)
        if unknown:
            raise ConfigurationError(
                f"LocalChannelLayer got unknown CONFIG keys {unknown}; it takes "
                f"{', '.join(sorted(_LAYER_KEYS | set(_OWN_KEYS)))}"
            )
        super().__init__(layer_config(**config))
        if not isinstance(autostart, bool):
            raise ConfigurationError(f"autostart must be True or False, got {autostart!r}")
        self.path = check_socket_path(
            default_socket_path(self.config.prefix) if path is None else path
        )
        self.autostart = autostart
        self.broker_idle_timeout = _number("broker_idle_timeout", broker_idle_timeout, 0, True)
        self.connect_timeout = _number("connect_timeout", connect_timeout, 0, False)
        self._private_directory = path is None
        self._lock = threading.Lock()
        self._connections: dict[asyncio.AbstractEventLoop, BrokerConnection] = {}
        self._connect_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._hooked: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        self._pid = os.getpid()
        self._process = secrets.token_hex(4)

    # Connections -----------------------------------------------------------------------------

    def _forget_parent(self) -> None:
        """After a fork the parent's connections and process name are not ours (lock held)."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._process = secrets.token_hex(4)
            self._connections = {}
            self._connect_locks = {}
            self._hooked = weakref.WeakSet()

    async def _connection(self) -> BrokerConnection:
        """This event loop's connection to the broker (connecting, or starting it, if needed)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._forget_parent()
            connection = self._connections.get(loop)
            if connection is not None and not connection.closed:
                return connection
            connecting = self._connect_locks.setdefault(loop, asyncio.Lock())
        async with connecting:
            with self._lock:
                connection = self._connections.get(loop)
            if connection is not None and not connection.closed:
                return connection
            connection = await connect(
                ConnectOptions(
                    path=self.path,
                    hello=hello_for(self.config),
                    autostart=self.autostart,
                    idle_timeout=self.broker_idle_timeout,
                    timeout=self.connect_timeout,
                    private_directory=self._private_directory,
                )
            )
            with self._lock:
                self._connections[loop] = connection
                for other in [other for other in self._connections if other.is_closed()]:
                    del self._connections[other]
                    self._connect_locks.pop(other, None)
                hook = loop not in self._hooked
                self._hooked.add(loop)
            if hook:
                _close_with_loop(loop, weakref.ref(self))
            return connection

    def _loop_closing(self, loop: asyncio.AbstractEventLoop) -> BrokerConnection | None:
        with self._lock:
            self._connect_locks.pop(loop, None)
            return self._connections.pop(loop, None)

    async def broker_info(self) -> dict[str, Any]:
        """The broker's pid, socket path, uptime and client counts (for tools and tests)."""
        connection = await self._connection()
        info: dict[str, Any] = await connection.call("info")
        return info

    async def close(self) -> None:
        """Close this event loop's connection; unacked work taken on it goes back to the queue."""
        connection = self._loop_closing(asyncio.get_running_loop())
        if connection is not None:
            await connection.aclose()

    # Sending ---------------------------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        naming.require_valid_channel_name(channel)
        data = codec.encode(message, self.config.max_message_size)
        connection = await self._connection()
        if not await connection.call("send", channel, data, ordering_key(message)):
            self.channel_full_count += 1
            raise ChannelFull(
                f"channel {channel!r} is full: it holds its capacity of "
                f"{self.get_capacity(channel)} messages (set 'capacity' or 'channel_capacity')"
            )

    async def group_add(self, group: str, channel: str) -> None:
        naming.require_valid_group_name(group)
        naming.require_valid_channel_name(channel)
        await (await self._connection()).call("group_add", group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        naming.require_valid_group_name(group)
        naming.require_valid_channel_name(channel)
        await (await self._connection()).call("group_discard", group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """One request; the broker puts the message on every live member (full ones skip it)."""
        naming.require_valid_group_name(group)
        data = codec.encode(message, self.config.max_message_size)
        connection = await self._connection()
        _, full = await connection.call("group_send", group, data, ordering_key(message))
        if full:
            self.channel_full_count += full
            logger.debug("group %s: %d full member channels skipped the message", group, full)

    # Receiving -------------------------------------------------------------------------------

    async def receive(self, channel: str) -> dict[str, Any]:
        naming.require_valid_channel_name(channel)
        while True:
            received = await self.receive_many([channel])
            if received is not None:
                return received[1]

    async def receive_many(
        self, channels: Sequence[str], timeout: float | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """Wait in the broker on all ``channels`` at once; fair across them. At-most-once."""
        names = _channel_list(channels)
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
            timeout = max(0.0, float(timeout))
        connection = await self._connection()
        taken = await connection.call("recv", names, timeout)
        if taken is None:
            return None
        return taken[0], codec.decode(taken[1])

    async def new_channel(self, prefix: str = "specific.") -> str:
        with self._lock:
            self._forget_parent()
            process = self._process
        return self._new_channel_name(prefix, process)

    def work_receiver(self, channels: Sequence[str], group: str = "workers") -> WorkReceiver:
        names = _channel_list(channels)
        naming.require_valid_group_name(group)
        return _LocalWorkReceiver(self, names, group)

    # Housekeeping ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Drop every message, group and unacked delivery of this layer's prefix."""
        await (await self._connection()).call("flush")

    async def queue_stats(self) -> QueueStats:
        """Depth and oldest age of each non-empty normal channel (one request)."""
        stats = await (await self._connection()).call("stats")
        return QueueStats(
            channels={
                channel: ChannelStats(int(depth), float(age))
                for channel, (depth, age) in stats.items()
            }
        )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _channel_list(channels: Sequence[str]) -> list[str]:
    if isinstance(channels, str):
        raise TypeError(f"pass a list of channel names, not the string {channels!r}")
    names = [naming.require_valid_channel_name(channel) for channel in channels]
    if not names:
        raise ValueError("give at least one channel to receive from")
    return names


def _close_with_loop(
    loop: asyncio.AbstractEventLoop, layer_ref: weakref.ref[LocalChannelLayer]
) -> None:
    """Close a loop's connection when that loop closes (async_to_sync makes short-lived loops)."""
    original_close = loop.close

    def close() -> None:
        layer = layer_ref()
        if layer is not None and not loop.is_running() and not loop.is_closed():
            connection = layer._loop_closing(loop)
            if connection is not None:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(connection.aclose())
        original_close()

    with contextlib.suppress(AttributeError):  # a loop class that refuses it keeps its sockets
        loop.close = close  # type: ignore[method-assign]


@dataclass
class _LocalDelivery(Delivery):
    tag: int = 0
    connection: BrokerConnection | None = field(default=None, repr=False)


class _LocalWorkReceiver(WorkReceiver):
    """Ordered, acked consumption; the broker keeps what is taken until it is acked.

    One background task (the pump) keeps one ``work`` request open in the broker while some
    ``get()`` waits; what it takes goes through a :class:`KeyedDispatcher`, and waiting getters
    are woken when a delivery may have become ready.
    """

    def __init__(self, layer: LocalChannelLayer, channels: list[str], group: str) -> None:
        self._layer = layer
        self._channels = channels
        self._group = group
        self._id = next(_receiver_ids)
        self._dispatcher = KeyedDispatcher()
        self._pump: asyncio.Task[None] | None = None
        self._idle_getters = 0
        self._sleepers: set[asyncio.Future[None]] = set()
        self._not_handed_out: dict[int, _LocalDelivery] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._overdue_checked = 0.0

    def _own_loop(self) -> bool:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        return self._loop is loop

    async def get(self, timeout: float | None = None) -> Delivery | None:
        if not self._own_loop():
            raise RuntimeError(
                "a work receiver belongs to the event loop that first used it; make one per loop"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped:
            now = time.monotonic()
            if now - self._overdue_checked >= _OVERDUE_CHECK_SECONDS:
                self._overdue_checked = now
                self._dispatcher.release_overdue()
            delivery = self._dispatcher.next_ready()
            if delivery is not None:
                if isinstance(delivery, _LocalDelivery):
                    self._not_handed_out.pop(delivery.tag, None)
                return delivery
            self._raise_pump_failure()
            remaining = None if deadline is None else deadline - now
            if remaining is not None and remaining <= 0:
                return None
            self._idle_getters += 1
            try:
                self._start_pump()
                await self._sleep(
                    _TICK_SECONDS if remaining is None else min(remaining, _TICK_SECONDS)
                )
            finally:
                self._idle_getters -= 1
        return None

    def _start_pump(self) -> None:
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())
            self._pump.add_done_callback(self._pump_done)

    def _pump_done(self, pump: asyncio.Task[None]) -> None:
        if not pump.cancelled():
            pump.exception()  # retrieved here; the next get() raises it
        self._wake()

    def _raise_pump_failure(self) -> None:
        pump = self._pump
        if pump is not None and pump.done():
            self._pump = None
            error = None if pump.cancelled() else pump.exception()
            if error is not None:
                raise error

    async def _run_pump(self) -> None:
        while not self._stopped and self._idle_getters > 0:
            connection = await self._layer._connection()
            try:
                taken = await self._take(connection)
            except LayerConnectionError:
                if connection.closed_by_client:  # layer.close(): end quietly
                    return
                raise
            if taken is not None:
                self._not_handed_out[taken.tag] = taken
                self._dispatcher.offer(taken)
                self._wake()

    async def _sleep(self, seconds: float) -> None:
        """Wait for :meth:`_wake` or ``seconds``, without a task or timer per wake-up."""
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        self._sleepers.add(sleeper)
        timer = loop.call_later(seconds, _resolve, sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.discard(sleeper)

    def _wake(self) -> None:
        for sleeper in self._sleepers:
            _resolve(sleeper)

    async def _take(self, connection: BrokerConnection) -> _LocalDelivery | None:
        taken = await connection.call("work", self._channels, self._group, self._id, None)
        if taken is None:
            return None
        channel, data, tag, _ = taken
        message = codec.decode(data)
        return _LocalDelivery(
            channel, message, ordering_key(message), self._acked, tag=tag, connection=connection
        )

    async def _acked(self, delivery: Delivery) -> None:
        if self._loop is not None and not self._own_loop():
            try:
                future = asyncio.run_coroutine_threadsafe(self._acked(delivery), self._loop)
            except RuntimeError as error:  # that loop is closed: its connection is gone too
                logger.warning("cannot ack %s: %s", delivery.channel, error)
                return
            await asyncio.wrap_future(future)
            return
        self._dispatcher.done(delivery)
        self._wake()
        connection = delivery.connection if isinstance(delivery, _LocalDelivery) else None
        if connection is None or connection.closed:
            return
        assert isinstance(delivery, _LocalDelivery)
        try:
            await connection.call("ack", delivery.tag)
        except LayerConnectionError as error:
            logger.warning("could not ack a message of %s: %s", delivery.channel, error)

    async def stop(self, timeout: float | None = None) -> None:
        """Take nothing new; what was taken but not handed out goes back to the broker."""
        if self._loop is not None and not self._own_loop():
            future = asyncio.run_coroutine_threadsafe(self.stop(), self._loop)
            await asyncio.wrap_future(future)
            return
        self._stopped = True
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            await asyncio.wait({pump})
        self._wake()
        returned, self._not_handed_out = self._not_handed_out, {}
        by_connection: dict[BrokerConnection, list[int]] = {}
        for delivery in returned.values():
            if delivery.connection is not None and not delivery.connection.closed:
                by_connection.setdefault(delivery.connection, []).append(delivery.tag)
        for connection, tags in by_connection.items():
            try:
                await connection.call("release", sorted(tags))
            except LayerConnectionError as error:
                logger.warning("could not give back %d messages: %s", len(tags), error)
