"""The client side of the local broker: socket paths, starting the broker once, connections."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from channelworks.exceptions import ConfigurationError, LayerConnectionError
from channelworks.layers.config import LayerConfig
from channelworks.layers.local_protocol import (
    BLOCKING_OPS,
    CANCELLED,
    NO_REPLY,
    OK,
    PROTOCOL_VERSION,
    ProtocolError,
    pack_frame,
    read_frame,
)

MAX_SOCKET_PATH_BYTES = 103 if sys.platform == "darwin" else 107
_HIGH_WATER = 256 * 1024
_CONNECT_ATTEMPTS = 3
_CLOSED_HERE = "closed by this process"


def default_socket_path(prefix: str) -> str:
    """``$XDG_RUNTIME_DIR/channelworks/<prefix>.sock``, else ``<tmp>/channelworks-<uid>/...``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        directory = os.path.join(runtime, "channelworks")
    else:
        directory = os.path.join(tempfile.gettempdir(), f"channelworks-{os.getuid()}")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", prefix)
    if name != prefix or len(name) > 40 or name.startswith("."):
        name = f"{name.lstrip('.')[:32]}-{hashlib.sha256(prefix.encode()).hexdigest()[:10]}"
    return os.path.join(directory, f"{name}.sock")


def check_socket_path(path: Any) -> str:
    """The absolute form of a configured socket path, or a ``ConfigurationError``."""
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise ConfigurationError(f"path must be a file system path for the socket, got {path!r}")
    absolute = os.path.abspath(os.fspath(path))
    size = len(os.fsencode(absolute))
    if size > MAX_SOCKET_PATH_BYTES:
        raise ConfigurationError(
            f"the local broker socket path {absolute!r} is {size} bytes long; Unix sockets allow "
            f"at most {MAX_SOCKET_PATH_BYTES} here: set a shorter 'path' in the layer CONFIG"
        )
    return absolute


def prepare_directory(path: str, private: bool) -> None:
    """Create the socket's directory; a default (shared temp) directory must be ours alone."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.stat(directory)
    except OSError as error:
        raise ConfigurationError(
            f"cannot create the directory {directory!r} for the local broker socket: {error}; "
            "set 'path' in the layer CONFIG to a writable location"
        ) from error
    if private and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        raise ConfigurationError(
            f"{directory!r} (where the local broker socket lives) must belong to you and not be "
            "writable by others; fix its owner/mode or set 'path' in the layer CONFIG"
        )


def hello_for(config: LayerConfig) -> dict[str, Any]:
    """What a connection tells the broker first: protocol version, prefix and send settings."""
    return {
        "version": PROTOCOL_VERSION,
        "prefix": config.prefix,
        "pid": os.getpid(),
        "capacity": config.capacity,
        "channel_capacity": [
            [pattern.pattern, pattern.flags, capacity]
            for pattern, capacity in config.channel_capacity
        ],
        "expiry": config.expiry,
        "group_expiry": config.group_expiry,
    }


@dataclass(frozen=True)
class ConnectOptions:
    path: str
    hello: dict[str, Any]
    autostart: bool
    idle_timeout: float
    timeout: float
    private_directory: bool


class _Absent(Exception):
    """Nothing (or an exiting broker) listens on the socket: starting one may help."""


async def connect(options: ConnectOptions) -> BrokerConnection:
    """Connect to the broker on ``options.path``, starting it first if needed (once)."""
    prepare_directory(options.path, options.private_directory)
    reason = ""
    for _ in range(_CONNECT_ATTEMPTS):
        try:
            return await _open(options)
        except _Absent as error:
            reason = str(error)
        if not options.autostart:
            raise LayerConnectionError(
                f"no local channel layer broker listens on {options.path} ({reason}) and "
                "'autostart' is off: start one with `python -m channelworks.layers.local_broker "
                f"--socket {options.path}`"
            )
        async with start_lock(options.path, options.timeout):
            try:  # another process may have started it while we waited for the lock
                return await _open(options)
            except _Absent as error:
                reason = str(error)
            await asyncio.to_thread(
                spawn_broker, options.path, options.idle_timeout, options.timeout
            )
            try:
                return await _open(options)
            except _Absent as error:
                reason = str(error)
    raise LayerConnectionError(
        f"could not connect to the local channel layer broker at {options.path}: {reason} "
        f"(its log: {options.path}.log)"
    )


@contextlib.asynccontextmanager
async def start_lock(path: str, timeout: float) -> AsyncIterator[None]:
    """The file lock that makes sure only one process starts (or stops) the broker at a time."""
    lock_path = path + ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LayerConnectionError(
                        f"waited {timeout:g}s for {lock_path}: another process holds it while "
                        "starting the local broker"
                    ) from None
                await asyncio.sleep(0.01)
        yield
    finally:
        os.close(fd)


def spawn_broker(path: str, idle_timeout: float, timeout: float) -> None:
    """Start a detached broker; return when it listens (the start lock must be held)."""
    import channelworks

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(channelworks.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "channelworks.layers.local_broker",
        "--socket",
        path,
        "--idle-timeout",
        repr(float(idle_timeout)),
        "--detach",
        "--spawned",
    ]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LayerConnectionError(
            f"the local channel layer broker for {path} did not start within {timeout:g}s; "
            f"see {path}.log"
        ) from None
    except OSError as error:
        raise LayerConnectionError(
            f"could not run {sys.executable!r} to start the local channel layer broker: {error}"
        ) from error
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise LayerConnectionError(
            f"could not start the local channel layer broker on {path}: {detail} (log: {path}.log)"
        )


async def _open(options: ConnectOptions) -> BrokerConnection:
    path = options.path
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), options.timeout)
    except (FileNotFoundError, ConnectionRefusedError) as error:
        raise _Absent(error.strerror or type(error).__name__) from error
    except PermissionError as error:
        raise LayerConnectionError(
            f"not allowed to connect to the local broker socket {path} ({error.strerror}); it "
            "may belong to another user: set 'path' in the layer CONFIG"
        ) from error
    except TimeoutError:
        raise LayerConnectionError(
            f"connecting to the local broker at {path} timed out after {options.timeout:g}s"
        ) from None
    except OSError as error:
        raise LayerConnectionError(
            f"cannot connect to the local broker at {path}: {error}"
        ) from error
    try:
        writer.write(pack_frame([1, "hello", options.hello]))
        frame = await asyncio.wait_for(read_frame(reader), options.timeout)
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        writer.close()
        raise _Absent(f"the broker closed the connection ({type(error).__name__})") from error
    except TimeoutError:
        writer.close()
        raise LayerConnectionError(
            f"the local broker at {path} did not answer within {options.timeout:g}s"
        ) from None
    except ProtocolError as error:
        writer.close()
        raise LayerConnectionError(
            f"{path} does not speak the local broker protocol: {error}"
        ) from error
    if len(frame) != 3 or frame[1] != OK or not isinstance(frame[2], dict):
        writer.close()
        detail = frame[2][1] if len(frame) == 3 and isinstance(frame[2], list) else frame
        raise LayerConnectionError(
            f"the local broker refused the connection: {detail}. Stop that broker (it exits by "
            f"itself when idle; its pid is in {path}.pid) and retry"
        )
    return BrokerConnection(path, reader, writer, frame[2])


class BrokerConnection:
    """One connection of one event loop; concurrent requests are told apart by request ids."""

    def __init__(
        self,
        path: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: dict[str, Any],
    ) -> None:
        self.path = path
        self.loop = asyncio.get_running_loop()
        self.broker_pid = int(info.get("pid", 0))
        self._writer = writer
        self._pending: dict[int, tuple[asyncio.Future[Any], str]] = {}
        self._orphaned: dict[int, str] = {}
        self._ids = itertools.count(2)
        self._drain_lock = asyncio.Lock()
        self._error: str | None = None
        self._reader = self.loop.create_task(self._read_loop(reader))

    @property
    def closed(self) -> bool:
        return self._error is not None

    @property
    def closed_by_client(self) -> bool:
        return self._error == _CLOSED_HERE

    def _lost(self) -> LayerConnectionError:
        return LayerConnectionError(
            f"lost the connection to the local channel layer broker at {self.path} "
            f"({self._error}); the next call reconnects (starting a broker if needed), but "
            "messages a stopped broker held are gone"
        )

    async def call(self, op: str, *args: Any) -> Any:
        """Send one request and wait for its reply."""
        if self._error is not None:
            raise self._lost()
        rid = next(self._ids)
        future: asyncio.Future[Any] = self.loop.create_future()
        self._pending[rid] = (future, op)
        try:
            self._writer.write(pack_frame([rid, op, *args]))
            if self._writer.transport.get_write_buffer_size() > _HIGH_WATER:
                async with self._drain_lock:
                    await self._writer.drain()
            return await future
        except asyncio.CancelledError:
            self._abandon(rid, op, future)
            raise
        except ConnectionError as error:
            self._pending.pop(rid, None)
            self._fail(str(error) or type(error).__name__)
            raise self._lost() from error

    def notify(self, op: str, *args: Any) -> None:
        """Send a request that has no reply (nothing happens once the connection is lost)."""
        if self._error is None:
            self._writer.write(pack_frame([NO_REPLY, op, *args]))

    def _abandon(self, rid: int, op: str, future: asyncio.Future[Any]) -> None:
        """The caller was cancelled: cancel a blocking request, or give back what it got."""
        if self._pending.pop(rid, None) is not None:
            if self._error is None:
                self._orphaned[rid] = op
                if op in BLOCKING_OPS:
                    self.notify("cancel", rid)
        elif future.done() and not future.cancelled() and future.exception() is None:
            self._give_back(op, future.result())

    def _give_back(self, op: str, value: Any) -> None:
        """A message reached a request nobody waits for any more: return it to the broker."""
        if not isinstance(value, list) or len(value) != 4:
            return
        if op == "recv":
            self.notify("requeue", *value)
        elif op == "work":
            self.notify("release", [value[2]])

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        reason = _CLOSED_HERE
        try:
            while True:
                frame = await read_frame(reader)
                if len(frame) != 3:
                    raise ProtocolError("a reply must have 3 fields")
                self._settle(frame[0], frame[1], frame[2])
        except asyncio.IncompleteReadError:
            reason = "the broker closed the connection"
        except ProtocolError as error:
            reason = f"protocol error: {error}"
        except OSError as error:
            reason = str(error) or type(error).__name__
        finally:
            self._fail(reason)

    def _settle(self, rid: int, status: int, value: Any) -> None:
        entry = self._pending.pop(rid, None)
        if entry is None:
            op = self._orphaned.pop(rid, None)
            if op is not None and status == OK:
                self._give_back(op, value)
            return
        future, op = entry
        if future.done():  # its caller was cancelled a moment ago
            if status == OK:
                self._give_back(op, value)
            return
        if status == OK:
            future.set_result(value)
        elif status == CANCELLED:
            future.set_exception(LayerConnectionError(f"the local broker cancelled {op}"))
        else:
            detail = value[1] if isinstance(value, list) and len(value) == 2 else value
            future.set_exception(
                LayerConnectionError(f"the local broker rejected {op!r}: {detail}")
            )

    def _fail(self, reason: str) -> None:
        if self._error is not None:
            return
        self._error = reason
        self._writer.close()
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(self._lost())
        self._pending.clear()
        self._orphaned.clear()

    async def aclose(self) -> None:
        self._fail(_CLOSED_HERE)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
