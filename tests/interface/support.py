"""Helpers for the interface tests: a scripted worker, a real interface process, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from channelworks.layers import ChannelworksLayer
from tests.support.eventually import eventually
from tests.support.processes import Interface

logger = logging.getLogger(__name__)
INTERFACE_CHANNELS = [
    "websocket.connect",
    "websocket.receive",
    "websocket.disconnect",
    "http.request",
]

Handler = Callable[["FakeWorker", str, dict[str, Any]], Awaitable[None]]


async def echo(worker: FakeWorker, channel: str, message: dict[str, Any]) -> None:
    """A worker that accepts every socket (choosing the first subprotocol offered), echoes
    frames, closes on ``close <code>`` and answers HTTP with what it was sent."""
    if channel == "websocket.connect":
        reply: dict[str, Any] = {"accept": True}
        if message["subprotocols"]:
            reply["subprotocol"] = message["subprotocols"][0]
        await worker.reply(message, reply)
    elif channel == "websocket.receive":
        text = message.get("text")
        if text is not None and text.startswith("close "):
            await worker.reply(message, {"close": int(text.split()[1])})
        elif text is not None:
            await worker.reply(message, {"text": text})
        else:
            await worker.reply(message, {"bytes": message["bytes"]})
    elif channel == "http.request":
        await worker.reply(
            message,
            {
                "status": 200,
                "headers": [[b"content-type", b"text/plain"], [b"x-method", message["method"]]],
                "content": b"echo:" + message["body"],
            },
        )


class FakeWorker:
    """Plays the worker's side of the layer: records every message and answers through
    ``handler``. ``async with FakeWorker(layer, handler) as worker: ...``"""

    def __init__(self, layer: ChannelworksLayer, handler: Handler = echo) -> None:
        self.layer = layer
        self.handler = handler
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> FakeWorker:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        # Stop by flag rather than by cancelling a blocked receive: on Python 3.11 a receive
        # built on asyncio.wait_for can swallow a cancellation that races a message.
        self._stopping = True
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=5)
        if self.errors and exc_type is None:
            raise AssertionError(f"the fake worker's handler failed: {self.errors!r}")

    async def _run(self) -> None:
        while not self._stopping:
            got = await self.layer.receive_many(INTERFACE_CHANNELS, timeout=0.2)
            if got is None:
                continue
            channel, message = got
            logger.info("fake worker took %s %r", channel, message)
            self.received.append((channel, message))
            self._changed.set()
            try:
                await self.handler(self, channel, message)
            except Exception as error:  # keep serving; the test fails on exit
                self.errors.append(error)

    async def reply(self, message: dict[str, Any], reply: dict[str, Any]) -> None:
        await self.layer.send(message["reply_channel"], reply)
        logger.info("fake worker replied to %s: %r", message["reply_channel"], reply)

    def messages(self, channel: str, path: str | None = None) -> list[dict[str, Any]]:
        """What arrived on ``channel`` (for ``path`` only, when given: messages of an earlier
        test's sockets can still arrive, so tests pick theirs by path)."""
        return [
            message
            for name, message in self.received
            if name == channel and (path is None or message.get("path") == path)
        ]

    async def wait_for(
        self, channel: str, count: int = 1, timeout: float = 10.0, path: str | None = None
    ) -> list[dict[str, Any]]:
        """The first ``count`` messages of ``channel`` (and ``path``), once that many arrived."""
        deadline = time.monotonic() + timeout
        while len(self.messages(channel, path)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{count} {channel} messages (path {path}) expected within {timeout}s; got "
                    f"{self.received!r}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.messages(channel, path)[:count]


def rss_bytes(pid: int) -> int:
    """The resident memory of process ``pid`` now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class PeakRss:
    """Watches a process's resident memory every 10 ms from creation until :meth:`stop`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = self.peak = rss_bytes(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.01)

    def stop(self) -> int:
        """Stop watching; how many bytes the peak was above the start."""
        self._done.set()
        self._thread.join()
        return self.peak - self.before


class InterfaceProcess(Interface):
    """A real ``channelworks-interface`` on free loopback ports, with this process's environment
    and text logs under ``env``."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        full_env = {**os.environ, "CHANNELWORKS_LOG_FORMAT": "text", **env}
        super().__init__(log_path.stem, full_env, log_path.parent)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.popen

    def wait_ready(self, timeout: float = 30.0) -> None:
        eventually(self.ready, timeout=timeout, message=f"interface ready; log:\n{self.log()}")

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        return super().stop(timeout)
