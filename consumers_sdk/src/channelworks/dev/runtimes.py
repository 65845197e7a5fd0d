"""The interface server and the worker runtime that dev runs, found through entry points.

The SDK imports neither runtime (dependencies point down: the runtimes depend on the SDK, not the
other way). Each runtime package registers a module in the entry-point group
``channelworks.dev_runtimes`` (its pyproject.toml): ``interface`` (``channelworks_interface.dev``)
and ``worker`` (``channelworks_worker.dev``). Dev mode looks them up here and drives them through
the protocols below; a runtime that is not installed is said once, with the command that installs
it (:func:`channelworks.install_hints.runtimes_message`).
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from channelworks import install_hints
from channelworks.exceptions import ConfigurationError

if TYPE_CHECKING:
    from channelworks import routing
    from channelworks.dev.config import DevConfig
    from channelworks.layers import base

GROUP = "channelworks.dev_runtimes"
INTERFACE = "interface"
WORKER = "worker"
DISTRIBUTIONS = {INTERFACE: "channelworks-interface", WORKER: "channelworks-worker"}


class Server(Protocol):
    """An interface server built for dev."""

    @property
    def listening(self) -> bool:
        """True once it accepts connections."""

    @property
    def http_port(self) -> int | None:
        """The port it listens on, once it does."""

    def run(self, install_signals: bool = True) -> int:
        """Serve until stopped (SIGTERM/SIGINT drain when ``install_signals``); the exit code."""

    def request_drain(self) -> None:
        """Begin draining, as SIGTERM does; callable from any thread."""


class Worker(Protocol):
    """One worker runtime, run on an event loop."""

    @property
    def ready(self) -> bool:
        """True while it takes messages."""

    def stop(self) -> None:
        """Take nothing new; :meth:`run` returns once in-flight work is done (call on its loop)."""

    async def run(self) -> None:
        """Take and handle messages until :meth:`stop`."""


class InterfaceRuntime(Protocol):
    """What the ``interface`` entry point offers."""

    def preload(self) -> None:
        """Import, on the calling thread, what the server would import lazily on its own."""

    def server(self, config: DevConfig, layer: base.ChannelworksLayer) -> Server:
        """The production interface server with the dev settings of ``config``, on ``layer``."""


class WorkerRuntime(Protocol):
    """What the ``worker`` entry point offers."""

    def workers(
        self,
        layer: base.ChannelworksLayer,
        router: routing.Router,
        count: int,
        concurrency: int,
        drain_seconds: float,
    ) -> Sequence[Worker]:
        """``count`` production workers on ``layer`` (run them on one loop of this process)."""

    def serve(
        self,
        config: DevConfig,
        layer: base.ChannelworksLayer,
        router: routing.Router,
        drain_seconds: float,
    ) -> int:
        """Run one worker with its probes (on a free loopback port) until SIGTERM; exit code."""


@functools.cache
def registered() -> Mapping[str, importlib.metadata.EntryPoint]:
    """The runtimes this Python has installed, by name (``interface``, ``worker``); looked up
    once per process (reading every installed package's metadata takes tens of milliseconds)."""
    found = importlib.metadata.entry_points(group=GROUP)
    return {entry.name: entry for entry in found if entry.name in DISTRIBUTIONS}


def missing(found: Mapping[str, importlib.metadata.EntryPoint] | None = None) -> list[str]:
    """The distributions of the runtimes dev needs that are not installed."""
    found = registered() if found is None else found
    return [distribution for name, distribution in DISTRIBUTIONS.items() if name not in found]


def _load(name: str) -> object:
    found = registered()
    entry = found.get(name)
    if entry is None:
        raise ConfigurationError(install_hints.runtimes_message(missing(found)))
    try:
        return entry.load()
    except ImportError as error:  # installed, but broken (a dependency missing)
        raise ConfigurationError(
            f"cannot load {DISTRIBUTIONS[name]} ({entry.value}): {error}"
        ) from error


def interface() -> InterfaceRuntime:
    """The installed interface runtime; ``ConfigurationError`` saying how to install it."""
    return cast("InterfaceRuntime", _load(INTERFACE))


def worker() -> WorkerRuntime:
    """The installed worker runtime; ``ConfigurationError`` saying how to install it."""
    return cast("WorkerRuntime", _load(WORKER))
