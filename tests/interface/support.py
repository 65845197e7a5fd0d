"""Helpers for the interface tests: a scripted worker, a real interface process, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from channelworks.layers import ChannelworksLayer
from tests.support.eventually import eventually

logger = logging.getLogger(__name__)
INTERFACE_CHANNELS = [
    "websocket.connect",
    "websocket.receive",
    "websocket.disconnect",
    "http.request",
]
INTERFACE_COMMAND = str(Path(sys.executable).with_name("channelworks-interface"))

Handler = Callable[["FakeWorker", str, dict[str, Any]], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


def metric(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The value of sample ``name`` with ``labels`` in a /metrics page (0.0 when absent)."""
    wanted = dict(labels or {})
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items()):
                return float(sample.value)
    return 0.0


class InterfaceProcess:
    """A real ``channelworks-interface`` process on free loopback ports."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.log_path = log_path
        full_env = {
            **os.environ,
            "PORT": str(self.port),
            "CHANNELWORKS_INTERFACE_HOST": "127.0.0.1",
            "CHANNELWORKS_METRICS_HOST": "127.0.0.1",
            "CHANNELWORKS_METRICS_PORT": str(self.metrics_port),
            "CHANNELWORKS_LOG_FORMAT": "text",
            **env,
        }
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [INTERFACE_COMMAND], env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def probe(self, path: str) -> int:
        """The status of GET ``path`` on the metrics port (0 when nothing answers)."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"interface exited early:\n{self.log()}")
            return self.probe("/readyz") == 200

        eventually(ready, timeout=timeout, message=f"interface ready; log:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        self.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._log.close()
        return code
