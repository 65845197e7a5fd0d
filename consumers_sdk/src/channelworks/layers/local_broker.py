"""The broker behind ``LocalChannelLayer``: one small process that holds the layer's state.

Clients (the processes of one machine that use ``LocalChannelLayer``) connect to it over a Unix
domain socket and speak :mod:`channelworks.layers.local_protocol`. The first client that finds no
broker starts one; it exits by itself once it has had no client for ``--idle-timeout`` seconds and
holds no unexpired message. Run it by hand (in the foreground) with::

    python -m channelworks.layers.local_broker --socket /run/user/1000/channelworks/app.sock

State is in memory only: queued messages and groups are lost when the broker stops.

Reliable work (``work``/``ack``): a message handed to a work receiver stays the broker's until it
is acked; when the connection that took it closes (its process exited or was killed), it goes
back to its channel, in its original place. Messages of one ordering key (a connection's
``reply_channel``) go only to the receiver that holds unacked messages of that key, so one
connection's events are handled in order even across processes.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import fcntl
import itertools
import logging
import os
import re
import signal
import socket
import stat
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from channelworks.layers.local_protocol import (
    CANCELLED,
    ERROR,
    NO_REPLY,
    OK,
    PROTOCOL_VERSION,
    ProtocolError,
    pack_frame,
    read_frame,
)

logger = logging.getLogger("channelworks.layers.local_broker")
DEFAULT_IDLE_TIMEOUT = 60.0
SWEEP_SECONDS = 1.0
HELLO_TIMEOUT = 10.0
_HIGH_WATER = 1024 * 1024
_MAX_LOG_BYTES = 1024 * 1024


class StartupError(Exception):
    """The broker cannot start (the message says why)."""


class _Pending:
    """Returned by a blocking operation that will reply later."""


_PENDING = _Pending()


@dataclass(eq=False)
class _Item:
    seq: int
    sent: float
    expires: float
    data: bytes
    key: str | None


def _seq_of(item: _Item) -> int:
    return item.seq


@dataclass(frozen=True)
class _Settings:
    """The sending client's capacity and expiry settings (each client brings its own)."""

    capacity: int
    channel_capacity: tuple[tuple[re.Pattern[str], int], ...]
    expiry: float
    group_expiry: float

    def capacity_for(self, channel: str) -> int:
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        return self.capacity


def _settings(hello: dict[str, Any]) -> _Settings:
    try:
        patterns = tuple(
            (re.compile(str(pattern), int(flags)), int(capacity))
            for pattern, flags, capacity in hello.get("channel_capacity", [])
        )
        return _Settings(
            capacity=int(hello["capacity"]),
            channel_capacity=patterns,
            expiry=float(hello["expiry"]),
            group_expiry=float(hello["group_expiry"]),
        )
    except (KeyError, TypeError, ValueError, re.error) as error:
        raise ProtocolError(f"bad hello settings: {error!r}") from error


@dataclass(eq=False)
class _Waiter:
    """A blocking ``recv`` or ``work`` request that found nothing yet."""

    client: _Client
    rid: int
    channels: list[str]
    start: int
    work: tuple[str, int] | None  # (group, receiver id) for work requests
    order: int
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _InFlight:
    channel: str
    item: _Item
    group: str


@dataclass(eq=False)
class _Owner:
    client: _Client
    receiver: int
    count: int


@dataclass(eq=False)
class _Namespace:
    """The state of one layer prefix."""

    prefix: str
    queues: dict[str, deque[_Item]] = field(default_factory=dict)
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    waiters: dict[str, list[_Waiter]] = field(default_factory=dict)
    owners: dict[tuple[str, str], _Owner] = field(default_factory=dict)
    clients: set[_Client] = field(default_factory=set)


class _Client:
    def __init__(
        self, writer: asyncio.StreamWriter, namespace: _Namespace, settings: _Settings, pid: Any
    ) -> None:
        self.writer = writer
        self.ns = namespace
        self.settings = settings
        self.pid = pid
        self.waiters: dict[int, _Waiter] = {}
        self.inflight: dict[int, _InFlight] = {}
        self.rotation = 0

    def reply(self, rid: int, status: int, value: Any) -> None:
        if rid != NO_REPLY and not self.writer.is_closing():
            self.writer.write(pack_frame([rid, status, value]))


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(what)


def _check_key(key: Any) -> str | None:
    _require(key is None or isinstance(key, str), "key must be a string or nil")
    return key  # type: ignore[no-any-return]


def _check_channels(channels: Any) -> list[str]:
    _require(
        isinstance(channels, list) and bool(channels) and all(isinstance(c, str) for c in channels),
        "channels must be a non-empty array of strings",
    )
    return channels  # type: ignore[no-any-return]


def _drop_expired(queue: deque[_Item], now: float) -> None:
    if any(item.expires <= now for item in queue):
        kept = [item for item in queue if item.expires > now]
        queue.clear()
        queue.extend(kept)


class Broker:
    """The layer state, the listening socket and the clients' connections."""

    def __init__(self, path: str, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.path = path
        self.lock_path = path + ".lock"
        self.pid_path = path + ".pid"
        self.idle_timeout = idle_timeout
        self._namespaces: dict[str, _Namespace] = {}
        self._connections = 0
        self._seq = itertools.count(1)
        self._tags = itertools.count(1)
        self._order = itertools.count()
        self._idle_since = time.monotonic()
        self._started = time.monotonic()
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._stopping: asyncio.Event | None = None
        self._ops: dict[str, Callable[..., Any]] = {
            "send": self._op_send,
            "group_add": self._op_group_add,
            "group_discard": self._op_group_discard,
            "group_send": self._op_group_send,
            "recv": self._op_recv,
            "work": self._op_work,
            "ack": self._op_ack,
            "release": self._op_release,
            "requeue": self._op_requeue,
            "cancel": self._op_cancel,
            "flush": self._op_flush,
            "stats": self._op_stats,
            "info": self._op_info,
        }

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the socket (replacing a stale socket file) and write the pid file."""
        self._stopping = asyncio.Event()
        try:
            self._server = await asyncio.start_unix_server(self._serve_client, path=self.path)
        except OSError as error:
            raise StartupError(f"cannot listen on {self.path}: {error}") from error
        os.chmod(self.path, 0o600)
        self._inode = os.stat(self.path).st_ino
        with contextlib.suppress(OSError), open(self.pid_path, "w") as pid_file:
            pid_file.write(f"{os.getpid()}\n")

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def serve(self) -> None:
        """Run until stopped (signal) or idle; then stop listening and remove the socket file."""
        assert self._stopping is not None
        sweeper = asyncio.create_task(self._sweep_forever())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({sweeper, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sweeper.cancel()
            stopping.cancel()
            self._close_listener()

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        with contextlib.suppress(OSError, ValueError):
            with open(self.pid_path) as pid_file:
                pid = int(pid_file.read().strip())
            if pid == os.getpid():
                os.unlink(self.pid_path)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            self._sweep(now)
            if self._connections == 0 and self._should_exit(now) and self._try_exit():
                return

    def _sweep(self, now: float) -> None:
        for prefix, ns in list(self._namespaces.items()):
            for channel, queue in list(ns.queues.items()):
                _drop_expired(queue, now)
                if not queue:
                    del ns.queues[channel]
            for group, members in list(ns.groups.items()):
                for channel, expires in list(members.items()):
                    if expires <= now:
                        del members[channel]
                if not members:
                    del ns.groups[group]
            if not ns.clients and not ns.queues and not ns.groups:
                del self._namespaces[prefix]

    def _should_exit(self, now: float) -> bool:
        try:
            replaced = os.stat(self.path).st_ino != self._inode
        except OSError:
            replaced = True
        if replaced:
            logger.info("the socket file %s was removed or replaced; exiting", self.path)
            return True
        if self.idle_timeout <= 0 or now - self._idle_since < self.idle_timeout:
            return False
        return not any(ns.queues for ns in self._namespaces.values())

    def _try_exit(self) -> bool:
        """Stop listening, unless a client connected or is starting a broker right now."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            fd = -1
        try:
            if fd >= 0:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
            if self._connections:
                return False
            logger.info("no client for %.0fs and no queued message; exiting", self.idle_timeout)
            self._close_listener()
            return True
        finally:
            if fd >= 0:
                os.close(fd)

    # Connections -----------------------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._connections += 1
        client: _Client | None = None
        try:
            client = await self._greet(reader, writer)
            while client is not None:
                self._handle(client, await read_frame(reader))
                if writer.transport.get_write_buffer_size() > _HIGH_WATER:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except ProtocolError as error:
            logger.warning("closing a connection that broke the protocol: %s", error)
        finally:
            self._connections -= 1
            if self._connections == 0:
                self._idle_since = time.monotonic()
            if client is not None:
                self._drop(client)
            writer.close()

    async def _greet(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Client | None:
        frame = await asyncio.wait_for(read_frame(reader), HELLO_TIMEOUT)
        if len(frame) != 3 or frame[1] != "hello" or not isinstance(frame[2], dict):
            raise ProtocolError("the first request on a connection must be hello")
        rid, hello = frame[0], frame[2]
        if hello.get("version") != PROTOCOL_VERSION:
            detail = (
                f"the broker at {self.path} (pid {os.getpid()}) speaks protocol version "
                f"{PROTOCOL_VERSION}, this client version {hello.get('version')!r}"
            )
            writer.write(pack_frame([rid, ERROR, ["version", detail]]))
            await writer.drain()
            return None
        prefix = hello.get("prefix")
        if not isinstance(prefix, str):
            raise ProtocolError("hello needs a prefix")
        ns = self._namespaces.get(prefix)
        if ns is None:
            ns = self._namespaces[prefix] = _Namespace(prefix)
        client = _Client(writer, ns, _settings(hello), hello.get("pid"))
        ns.clients.add(client)
        client.reply(rid, OK, {"pid": os.getpid(), "version": PROTOCOL_VERSION})
        return client

    def _handle(self, client: _Client, frame: list[Any]) -> None:
        rid = frame[0]
        op = frame[1] if len(frame) > 1 else None
        handler = self._ops.get(op) if isinstance(op, str) else None
        if handler is None:
            client.reply(rid, ERROR, ["protocol", f"unknown operation {op!r}"])
            return
        try:
            result = handler(client, rid, *frame[2:])
        except (TypeError, ValueError) as error:
            client.reply(rid, ERROR, ["protocol", f"bad request {op}: {error}"])
            return
        if result is not _PENDING:
            client.reply(rid, OK, result)

    def _drop(self, client: _Client) -> None:
        """A connection closed: forget its waits, queue its unacked deliveries again."""
        ns = client.ns
        ns.clients.discard(client)
        for waiter in list(client.waiters.values()):
            self._unregister(waiter)
        if client.inflight:
            now = time.monotonic()
            for _, inflight in sorted(client.inflight.items()):
                self._requeue(ns, inflight.channel, inflight.item, now)
                self._release_owner(ns, inflight, client)
            logger.info(
                "a client (pid %s) left with %d unacked deliveries; they are queued again",
                client.pid,
                len(client.inflight),
            )
            client.inflight.clear()
        for owned, owner in list(ns.owners.items()):
            if owner.client is client:
                del ns.owners[owned]
        self._serve_all(ns)

    # Queues ----------------------------------------------------------------------------------

    def _put(
        self, ns: _Namespace, channel: str, data: bytes, key: str | None, settings: _Settings
    ) -> bool:
        now = time.monotonic()
        queue = ns.queues.get(channel)
        if queue is None:
            queue = ns.queues[channel] = deque()
        while queue and queue[0].expires <= now:
            queue.popleft()
        if len(queue) >= settings.capacity_for(channel):
            return False
        queue.append(_Item(next(self._seq), now, now + settings.expiry, data, key))
        self._serve_channel(ns, channel)
        return True

    def _requeue(self, ns: _Namespace, channel: str, item: _Item, now: float) -> None:
        """Put a message back in its original place, with a fresh expiry."""
        item.expires = now + max(item.expires - item.sent, SWEEP_SECONDS)
        queue = ns.queues.get(channel)
        if queue is None:
            queue = ns.queues[channel] = deque()
        bisect.insort(queue, item, key=_seq_of)

    def _take(self, ns: _Namespace, waiter: _Waiter) -> list[Any] | None:
        """Take the first message ``waiter`` may have, starting at its rotated channel."""
        now = time.monotonic()
        count = len(waiter.channels)
        for index in range(count):
            channel = waiter.channels[(waiter.start + index) % count]
            queue = ns.queues.get(channel)
            if not queue:
                continue
            item = self._pick(ns, queue, waiter, now)
            if item is None:
                continue
            if waiter.work is None:
                return [channel, item.data, item.seq, item.key]
            group, receiver = waiter.work
            tag = next(self._tags)
            waiter.client.inflight[tag] = _InFlight(channel, item, group)
            if item.key is not None:
                owner = ns.owners.get((group, item.key))
                if owner is None:
                    ns.owners[(group, item.key)] = _Owner(waiter.client, receiver, 1)
                else:
                    owner.count += 1
            return [channel, item.data, tag, item.key]
        return None

    def _pick(
        self, ns: _Namespace, queue: deque[_Item], waiter: _Waiter, now: float
    ) -> _Item | None:
        index = 0
        while index < len(queue):
            item = queue[index]
            if item.expires <= now:
                del queue[index]
                continue
            if waiter.work is None or self._may_take(ns, waiter.client, waiter.work, item):
                del queue[index]
                return item
            index += 1
        return None

    @staticmethod
    def _may_take(ns: _Namespace, client: _Client, work: tuple[str, int], item: _Item) -> bool:
        """A keyed message goes only to the receiver holding unacked messages of its key."""
        if item.key is None:
            return True
        owner = ns.owners.get((work[0], item.key))
        return owner is None or (owner.client is client and owner.receiver == work[1])

    def _release_owner(self, ns: _Namespace, inflight: _InFlight, client: _Client) -> bool:
        """One unacked message of a key is gone; True when the key is free for anyone."""
        if inflight.item.key is None:
            return False
        owned = (inflight.group, inflight.item.key)
        owner = ns.owners.get(owned)
        if owner is None or owner.client is not client:
            return False
        owner.count -= 1
        if owner.count > 0:
            return False
        del ns.owners[owned]
        return True

    # Waiting ---------------------------------------------------------------------------------

    def _take_or_wait(
        self,
        client: _Client,
        rid: int,
        channels: Any,
        timeout: Any,
        work: tuple[str, int] | None,
    ) -> Any:
        channels = _check_channels(channels)
        _require(
            timeout is None or (isinstance(timeout, int | float) and not isinstance(timeout, bool)),
            "timeout must be a number or nil",
        )
        _require(rid != NO_REPLY and rid not in client.waiters, "a blocking request needs an id")
        waiter = _Waiter(
            client, rid, channels, client.rotation % len(channels), work, next(self._order)
        )
        client.rotation += 1
        taken = self._take(client.ns, waiter)
        if taken is not None:
            return taken
        if timeout is not None and timeout <= 0:
            return None
        client.waiters[rid] = waiter
        for channel in dict.fromkeys(channels):
            client.ns.waiters.setdefault(channel, []).append(waiter)
        if timeout is not None:
            loop = asyncio.get_running_loop()
            waiter.timer = loop.call_later(timeout, self._time_out, waiter)
        return _PENDING

    def _unregister(self, waiter: _Waiter) -> bool:
        if waiter.client.waiters.get(waiter.rid) is not waiter:
            return False
        del waiter.client.waiters[waiter.rid]
        if waiter.timer is not None:
            waiter.timer.cancel()
        registry = waiter.client.ns.waiters
        for channel in dict.fromkeys(waiter.channels):
            waiting = registry.get(channel)
            if waiting is not None:
                with contextlib.suppress(ValueError):
                    waiting.remove(waiter)
                if not waiting:
                    del registry[channel]
        return True

    def _time_out(self, waiter: _Waiter) -> None:
        if self._unregister(waiter):
            waiter.client.reply(waiter.rid, OK, None)

    def _try_serve(self, ns: _Namespace, waiter: _Waiter) -> None:
        if waiter.client.waiters.get(waiter.rid) is not waiter:
            return
        taken = self._take(ns, waiter)
        if taken is not None:
            self._unregister(waiter)
            waiter.client.reply(waiter.rid, OK, taken)

    def _serve_channel(self, ns: _Namespace, channel: str) -> None:
        """A message arrived on ``channel``: hand it to the longest-waiting request that may."""
        for waiter in list(ns.waiters.get(channel, ())):
            if not ns.queues.get(channel):
                return
            self._try_serve(ns, waiter)

    def _serve_all(self, ns: _Namespace) -> None:
        """Messages became takeable (a key was freed, messages came back): serve every waiter."""
        waiters = {id(w): w for waiting in ns.waiters.values() for w in waiting}
        for waiter in sorted(waiters.values(), key=lambda w: w.order):
            self._try_serve(ns, waiter)

    # Operations ------------------------------------------------------------------------------

    def _op_send(
        self, client: _Client, rid: int, channel: str, data: bytes, key: Any = None
    ) -> bool:
        _require(isinstance(channel, str) and isinstance(data, bytes), "send(channel, data)")
        return self._put(client.ns, channel, data, _check_key(key), client.settings)

    def _op_group_add(self, client: _Client, rid: int, group: str, channel: str) -> None:
        _require(isinstance(group, str) and isinstance(channel, str), "group_add(group, channel)")
        expires = time.monotonic() + client.settings.group_expiry
        client.ns.groups.setdefault(group, {})[channel] = expires

    def _op_group_discard(self, client: _Client, rid: int, group: str, channel: str) -> None:
        members = client.ns.groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del client.ns.groups[group]

    def _op_group_send(
        self, client: _Client, rid: int, group: str, data: bytes, key: Any = None
    ) -> list[int]:
        """Put the message on every live member; reply ``[sent, skipped_because_full]``."""
        _require(isinstance(group, str) and isinstance(data, bytes), "group_send(group, data)")
        key = _check_key(key)
        members = client.ns.groups.get(group)
        if not members:
            return [0, 0]
        now = time.monotonic()
        sent = full = 0
        for channel, expires in list(members.items()):
            if expires <= now:
                del members[channel]
            elif self._put(client.ns, channel, data, key, client.settings):
                sent += 1
            else:
                full += 1
        return [sent, full]

    def _op_recv(self, client: _Client, rid: int, channels: Any, timeout: Any = None) -> Any:
        return self._take_or_wait(client, rid, channels, timeout, None)

    def _op_work(
        self, client: _Client, rid: int, channels: Any, group: Any, receiver: Any, timeout: Any
    ) -> Any:
        _require(isinstance(group, str) and isinstance(receiver, int), "work(group, receiver)")
        return self._take_or_wait(client, rid, channels, timeout, (group, receiver))

    def _op_ack(self, client: _Client, rid: int, tag: Any) -> bool:
        inflight = client.inflight.pop(tag, None)
        if inflight is None:
            return False
        if self._release_owner(client.ns, inflight, client):
            self._serve_all(client.ns)
        return True

    def _op_release(self, client: _Client, rid: int, tags: Any) -> int:
        _require(isinstance(tags, list), "release(tags)")
        now = time.monotonic()
        released = 0
        for tag in sorted(t for t in tags if isinstance(t, int)):
            inflight = client.inflight.pop(tag, None)
            if inflight is not None:
                self._requeue(client.ns, inflight.channel, inflight.item, now)
                self._release_owner(client.ns, inflight, client)
                released += 1
        if released:
            self._serve_all(client.ns)
        return released

    def _op_requeue(
        self, client: _Client, rid: int, channel: str, data: bytes, seq: int, key: Any = None
    ) -> None:
        _require(
            isinstance(channel, str) and isinstance(data, bytes) and isinstance(seq, int),
            "requeue(channel, data, seq, key)",
        )
        now = time.monotonic()
        item = _Item(seq, now, now + client.settings.expiry, data, _check_key(key))
        self._requeue(client.ns, channel, item, now)
        self._serve_channel(client.ns, channel)

    def _op_cancel(self, client: _Client, rid: int, target: Any) -> None:
        waiter = client.waiters.get(target)
        if waiter is not None and self._unregister(waiter):
            client.reply(target, CANCELLED, None)

    def _op_flush(self, client: _Client, rid: int) -> None:
        ns = client.ns
        ns.queues.clear()
        ns.groups.clear()
        ns.owners.clear()
        for member in ns.clients:
            member.inflight.clear()

    def _op_stats(self, client: _Client, rid: int) -> dict[str, list[float]]:
        now = time.monotonic()
        stats: dict[str, list[float]] = {}
        for channel, queue in client.ns.queues.items():
            if "!" in channel:
                continue
            _drop_expired(queue, now)
            if queue:
                stats[channel] = [len(queue), now - min(item.sent for item in queue)]
        return stats

    def _op_info(self, client: _Client, rid: int) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "path": self.path,
            "connections": self._connections,
            "clients": len(client.ns.clients),
            "uptime": time.monotonic() - self._started,
            "idle_timeout": self.idle_timeout,
            "unacked": sum(len(member.inflight) for member in client.ns.clients),
        }


# Running the broker ------------------------------------------------------------------------------


def is_listening(path: str, timeout: float = 2.0) -> bool:
    """True when something accepts connections on the Unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


async def _serve(path: str, idle_timeout: float, ready: Callable[[], None]) -> None:
    broker = Broker(path, idle_timeout)
    await broker.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, broker.stop)
    logger.info(
        "listening on %s (pid %d, idle timeout %s)",
        path,
        os.getpid(),
        f"{idle_timeout:g}s" if idle_timeout > 0 else "off",
    )
    ready()
    await broker.serve()
    logger.info("stopped")


def run(path: str, idle_timeout: float, spawned: bool, ready: Callable[[], None]) -> int:
    """Start a broker on ``path`` unless one already listens there; return the exit code.

    ``spawned`` means the caller (a client) holds the start lock; otherwise it is taken here.
    """
    lock_fd = -1
    if not spawned:
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)

    def release_and_ready() -> None:
        nonlocal lock_fd
        if lock_fd >= 0:
            os.close(lock_fd)
            lock_fd = -1
        ready()

    try:
        if is_listening(path):
            if spawned:
                release_and_ready()
                return 0
            raise StartupError(f"a broker already listens on {path}")
        if os.path.lexists(path) and not _is_socket(path):
            raise StartupError(f"{path} exists and is not a socket; remove it or choose another")
        os.umask(0o077)  # the socket, pid and log files are for this user only
        asyncio.run(_serve(path, idle_timeout, release_and_ready))
        return 0
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)


def _is_socket(path: str) -> bool:
    return stat.S_ISSOCK(os.lstat(path).st_mode)


def _detach(log_path: str, start: Callable[[Callable[[], None]], int]) -> int:
    """Fork a daemon that runs ``start``; return once it is ready (0) or failed (1, on stderr)."""
    read_end, write_end = os.pipe()
    if os.fork() != 0:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            report = pipe.read()
        if report == b"ok":
            return 0
        sys.stderr.write(
            report.decode(errors="replace")
            or f"the broker exited before it was ready; see {log_path}"
        )
        return 1
    os.close(read_end)
    os.setsid()
    _redirect_stdio(log_path)
    reported = False

    def ready() -> None:
        nonlocal reported
        if not reported:
            reported = True
            os.write(write_end, b"ok")
            os.close(write_end)

    code = 1
    try:
        code = start(ready)
    except BaseException as error:  # the daemon reports every failure, then exits
        logger.error("broker failed: %s", error, exc_info=not isinstance(error, StartupError))
        if not reported:
            reported = True
            with contextlib.suppress(OSError):
                os.write(write_end, f"{error}".encode())
                os.close(write_end)
    finally:
        logging.shutdown()
        os._exit(code)


def _redirect_stdio(log_path: str) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    try:
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if os.fstat(log).st_size > _MAX_LOG_BYTES:
            os.ftruncate(log, 0)
    except OSError:
        log = devnull
    os.dup2(log, 2)
    for fd in {devnull, log}:
        if fd > 2:
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m channelworks.layers.local_broker",
        description="The broker process of channelworks.layers.LocalChannelLayer.",
    )
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        help="exit after this many seconds without clients and queued messages (0: never)",
    )
    parser.add_argument("--detach", action="store_true", help="run as a daemon; log to PATH.log")
    parser.add_argument("--log", help="log file when detached (default: SOCKET.log)")
    parser.add_argument("--spawned", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path = os.path.abspath(args.socket)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s channelworks local broker[%(process)d] %(levelname)s %(message)s",
    )

    def start(ready: Callable[[], None]) -> int:
        return run(path, args.idle_timeout, args.spawned, ready)

    if args.detach:
        return _detach(args.log or path + ".log", start)
    try:
        return start(lambda: None)
    except StartupError as error:
        logger.error("%s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
