"""The processes of a dev run: the interface server, workers, or both in one process.

- :func:`run_all` — Daphne with the interface application on the main thread's event loop and
  the worker runtime on a second loop in a thread of the same process, both on one layer object.
  This is how the in-memory layer works (it only reaches its own process); ``manage.py
  runserver`` runs it too, for any layer.
- :func:`run_interface` — the interface server alone (local and Redis layers).
- :func:`run_worker` — one worker alone, with its probes on a free port (local and Redis layers).

The interface server and the worker runtime are the production ones, with settings suited to a
laptop (loopback address, probes on any free port, a short drain so a reload is quick). The SDK
does not import them: they plug in through entry points (:mod:`channelworks.dev.runtimes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import channelworks
from channelworks import exceptions
from channelworks.dev import migrations, runtimes
from channelworks.dev.config import DevConfig
from channelworks.layers import base
from channelworks.layers import env as layer_env

if TYPE_CHECKING:
    from channelworks import routing

logger = logging.getLogger(__name__)

EXIT_CONFIG = 2
WORKER_DRAIN_SECONDS = 5.0
WORKER_START_SECONDS = 30.0
READY_POLL_SECONDS = 0.05
READY_FILE_VARIABLE = "CHANNELWORKS_DEV_READY_FILE"  # set by the supervisor for its children


def configure_logging(config: DevConfig, role: str) -> None:
    """Plain text lines on stderr, tagged with the process's role (dev output is for people)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)-7s [{role}] %(name)s: %(message)s", "%X")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)


def setup_django(config: DevConfig) -> routing.Router:
    """Import the project (its folder first on ``sys.path``), set Django up, load the routing."""
    if config.project_dir not in sys.path:
        sys.path.insert(0, config.project_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = config.settings_module
    import django

    from channelworks import conf

    django.setup()
    migrations.warn_if_unapplied()
    return conf.get_router()


def build_layer(config: DevConfig) -> base.ChannelworksLayer:
    """The layer of this run; installed as the process's ``default`` layer, so ``Group(...)
    .send()`` in consumers, views and models' ``save()`` uses it."""
    return layer_env.build_layer(config.layer_settings())


def install_layer(layer: base.ChannelworksLayer) -> None:
    from channelworks import asgi

    asgi.channel_layers.set(channelworks.DEFAULT_CHANNEL_LAYER, layer)


def announce_listening(server: runtimes.Server, ready_file: str | None) -> None:
    """Create ``ready_file`` once ``server`` listens: how the supervisor knows that its own
    process (not whatever else might hold the port) is serving."""
    if not ready_file:
        return

    def announce() -> None:
        while not server.listening:
            time.sleep(READY_POLL_SECONDS)
        with open(ready_file, "w", encoding="utf-8") as marker:
            marker.write(str(server.http_port or ""))

    threading.Thread(target=announce, name="channelworks-dev-ready", daemon=True).start()


def load_runtimes() -> None:
    """Load both runtimes on this thread, before a server thread would (see
    :meth:`channelworks.dev.runtimes.InterfaceRuntime.preload`: Django's autoreloader walks
    ``sys.modules`` in the main thread). Missing runtimes are reported later, where the server
    starts."""
    with contextlib.suppress(exceptions.ConfigurationError):
        runtimes.interface().preload()
        runtimes.worker()


class WorkerThread:
    """``count`` worker runtimes on one event loop in a daemon thread of this process."""

    def __init__(
        self,
        runtime: runtimes.WorkerRuntime,
        layer: base.ChannelworksLayer,
        router: routing.Router,
        count: int,
        concurrency: int,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._runtime = runtime
        self._layer = layer
        self._router = router
        self._count = count
        self._concurrency = concurrency
        self._on_failure = on_failure
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: Sequence[runtimes.Worker] = []
        self._started = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, name="channelworks-dev-worker", daemon=True
        )

    def start(self) -> None:
        """Start the workers; return once they take messages (raise if they could not start)."""
        self._thread.start()
        self._started.wait(WORKER_START_SECONDS)
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = WORKER_DRAIN_SECONDS + 2.0) -> None:
        """Let in-flight messages finish (briefly), then return."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for worker in self._workers:
                try:
                    loop.call_soon_threadsafe(worker.stop)
                except RuntimeError:  # the loop closed meanwhile
                    break
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # reported to the starter and logged
            self.error = error
            logger.error("the workers stopped: %s", error, exc_info=error)
            self._on_failure()
        finally:
            self._started.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._workers = self._runtime.workers(
            self._layer, self._router, self._count, self._concurrency, WORKER_DRAIN_SECONDS
        )
        tasks = [asyncio.create_task(worker.run()) for worker in self._workers]
        while not all(worker.ready for worker in self._workers):
            if any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.01)
        self._started.set()
        await asyncio.gather(*tasks)


def cannot_start(what: str, error: Exception) -> int:
    """Log why the project could not be loaded (``what: error``) and return EXIT_CONFIG: a
    configuration, routing or import error in one line; anything else (a broken settings
    module, routing or models) with its type and traceback."""
    if isinstance(error, exceptions.ConfigurationError | exceptions.InvalidRoute | ImportError):
        logger.error("%s: %s", what, error)
    else:
        logger.error("%s: %s: %s", what, type(error).__name__, error, exc_info=error)
    return EXIT_CONFIG


def run_all(config: DevConfig, install_signals: bool = True, ready_file: str | None = None) -> int:
    """Interface server and workers in this process, on one layer; returns the exit code.

    ``install_signals`` is False when not on the main thread (under Django's autoreloader);
    ``ready_file`` is created once the server listens.
    """
    try:
        interface_runtime, worker_runtime = runtimes.interface(), runtimes.worker()
        router = setup_django(config)
        layer = build_layer(config)
    except Exception as error:
        return cannot_start("cannot start", error)
    install_layer(layer)
    server = interface_runtime.server(config, layer)
    workers = WorkerThread(
        worker_runtime,
        layer,
        router,
        config.workers,
        config.concurrency,
        on_failure=server.request_drain,
    )
    try:
        workers.start()
    except Exception as error:
        logger.error("cannot start the workers: %s", error)
        return EXIT_CONFIG
    announce_listening(server, ready_file)
    try:
        code = server.run(install_signals=install_signals)
    finally:
        workers.stop()
    return code if workers.error is None else 1


def run_interface(config: DevConfig, ready_file: str | None = None) -> int:
    """The interface server alone, on the run's (local or Redis) layer."""
    try:
        server = runtimes.interface().server(config, build_layer(config))
    except exceptions.ConfigurationError as error:
        logger.error("cannot start the interface server: %s", error)
        return EXIT_CONFIG
    announce_listening(server, ready_file)
    return server.run()


def run_worker(config: DevConfig) -> int:
    """One worker process (the production runtime, probes on a free loopback port)."""
    try:
        worker_runtime = runtimes.worker()
        router = setup_django(config)
        layer = build_layer(config)
    except Exception as error:
        return cannot_start("cannot start a worker", error)
    return worker_runtime.serve(config, layer, router, WORKER_DRAIN_SECONDS)
