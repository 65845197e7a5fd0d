"""Running it all: Daphne with the forwarding application, the health server, the SIGTERM drain.

Daphne runs on Twisted's asyncio reactor, so the application, the layer's connections, the health
server and the drain sequence all share one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from channelworks import gc_tuning
from channelworks.layers import ChannelworksLayer, readiness
from channelworks.process import probes
from channelworks_interface import app, draining, guards, load_report
from channelworks_interface.bridging import Bridge
from channelworks_interface.config import InterfaceConfig
from channelworks_interface.connections import Connections
from channelworks_interface.disconnects import DisconnectOutbox
from channelworks_interface.metrics import PROTOCOL_HTTP, Metrics
from channelworks_interface.websocket_bridge import RECEIVE_CHANNEL

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("channelworks_interface.access")
APPLICATION_CLOSE_TIMEOUT = 10.0  # Daphne cancels an app instance this long after disconnect
_HANDSHAKE_SLACK = 5.0  # Daphne's own handshake limits stay above ours, so ours answers first


class InterfaceServer:
    """One interface process. :meth:`run` blocks until the server stops and returns an exit code.

    Only one may run per process (Twisted's reactor cannot restart).
    """

    def __init__(self, config: InterfaceConfig, layer: ChannelworksLayer, metrics: Metrics) -> None:
        self.config = config
        self.layer = layer
        self.metrics = metrics
        self.connections = Connections()
        self.disconnects = DisconnectOutbox(layer, metrics)
        self.application = app.InterfaceApplication(
            Bridge(config, layer, metrics, self.connections, self.disconnects)
        )
        self.layer_watch = readiness.LayerWatch(layer, config.layer.tuning.readiness_grace_seconds)
        self.load_reporter = load_report.LoadReporter(layer, self.connections)
        self.health = probes.ProbeServer(
            config.metrics_host,
            config.metrics_port,
            metrics.registry,
            ready=lambda: self.connections.ready and self.layer_watch.ready,
        )
        self.metrics_port: int | None = None
        self.http_port: int | None = None
        self._daphne: Any = None
        self._drainer: draining.Drainer | None = None
        self._failed = False
        self._reactor: Any = None

    def run(self, install_signals: bool = True, tune_gc: bool = False) -> int:
        """Serve until stopped. ``install_signals``: SIGTERM/SIGINT start the drain; ``tune_gc``:
        the process is ours alone, set its garbage collector up for serving (gc_tuning)."""
        # Imported here, Daphne first: importing it installs the asyncio reactor (daphne_glue).
        from channelworks_interface import daphne_glue  # isort: skip
        from daphne.endpoints import (  # type: ignore[import-untyped, unused-ignore]  # isort: skip
            build_endpoint_description_strings,
        )
        from twisted.internet import reactor  # isort: skip

        daphne_glue.defer_debug_formatting()
        daphne_glue.read_sockets_directly()
        self._reactor = reactor
        config = self.config
        proxy = config.proxy_headers
        self._daphne = daphne_glue.Server(
            application=self.application,
            endpoints=build_endpoint_description_strings(host=config.host, port=config.port),
            signal_handlers=False,
            action_logger=_access_log if config.access_log else None,
            http_timeout=None,  # the bridge answers 504 itself
            websocket_timeout=config.websocket_max_age or -1,
            websocket_connect_timeout=config.connect_timeout + _HANDSHAKE_SLACK,
            websocket_handshake_timeout=config.connect_timeout + _HANDSHAKE_SLACK,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            proxy_forwarded_address_header="X-Forwarded-For" if proxy else None,
            proxy_forwarded_port_header="X-Forwarded-Port" if proxy else None,
            proxy_forwarded_proto_header="X-Forwarded-Proto" if proxy else None,
            websocket_max_message_size=config.max_message_bytes,
            websocket_max_frame_size=config.max_message_bytes,
            application_close_timeout=APPLICATION_CLOSE_TIMEOUT,
            verbosity=1,
            server_name="channelworks",
            on_listening=self._listening,
            max_body_bytes=config.max_body_bytes,
            on_body_too_large=self._body_too_large,
            protections=self._protections(),
        )
        self._drainer = draining.Drainer(
            config,
            self.connections,
            self.disconnects,
            self._daphne.stop_listening,
            self._finish,
            self._stop,
        )
        reactor.callWhenRunning(
            lambda: asyncio.ensure_future(self._start(install_signals, tune_gc))
        )
        logger.info(
            "channelworks interface for app %r (%s layer) starting on %s:%s",
            config.layer.app,
            config.layer.mode,
            config.host,
            config.port,
        )
        self._daphne.run()
        if self._daphne.abort_start or self._failed:
            return 1
        return 0

    def request_drain(self) -> None:
        """Begin draining, as SIGTERM does; callable from any thread."""
        if self._reactor is not None and self._drainer is not None:
            self._reactor.callFromThread(self._drainer.begin)

    # Lifecycle ---------------------------------------------------------------------------------

    def _listening(self) -> None:
        addresses = self._daphne.listening_addresses
        if addresses:
            self.http_port = int(addresses[0][1])
        self.connections.listening = True

    def _protections(self) -> guards.Protections:
        config = self.config
        # One socket's burst may take at most half of a websocket.receive stream's capacity, so
        # it cannot fill the stream it shares with other sockets.
        burst = min(config.message_burst, max(1, self.layer.get_capacity(RECEIVE_CHANNEL) // 2))
        if burst < config.message_burst:
            logger.warning(
                "CHANNELWORKS_INTERFACE_MESSAGE_BURST=%d is more than half the channel capacity "
                "(%d); using %d",
                config.message_burst,
                self.layer.get_capacity(RECEIVE_CHANNEL),
                burst,
            )
        return guards.Protections(
            metrics=self.metrics,
            max_connections=config.max_connections,
            header_timeout=config.header_timeout,
            body_timeout=config.body_timeout,
            idle_timeout=config.idle_timeout,
            message_rate=config.message_rate,
            message_burst=burst,
            max_output_bytes=config.max_output_bytes,
            write_timeout=config.write_timeout,
        )

    def _body_too_large(self) -> None:
        self.metrics.refused(PROTOCOL_HTTP, "too_large")
        self.metrics.http_requests.labels("413").inc()

    async def _start(self, install_signals: bool, tune_gc: bool) -> None:
        try:
            self.metrics_port = await self.health.start()
        except OSError as error:
            logger.critical(
                "cannot serve metrics on %s:%s: %s",
                self.config.metrics_host,
                self.config.metrics_port,
                error,
            )
            self._failed = True
            self._stop()
            return
        self.layer_watch.start()
        self.load_reporter.start()
        if install_signals and self._drainer is not None:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._drainer.begin)
        if tune_gc:
            gc_tuning.tune_for_serving()

    async def _finish(self) -> None:
        await self.health.close()
        await self.layer_watch.stop()
        await self.load_reporter.stop()
        await self.layer.close()

    def _stop(self) -> None:
        if self._reactor is not None and self._reactor.running:
            self._reactor.stop()


def _access_log(protocol: Any, action: str, details: dict[str, Any]) -> None:
    if protocol == "http" and action == "complete":
        access_logger.info(
            "%s %s %s %s %.3fs %sB",
            details.get("client"),
            details.get("method"),
            details.get("path"),
            details.get("status"),
            details.get("time_taken", 0.0),
            details.get("size"),
        )
    else:
        access_logger.info("websocket %s %s %s", action, details.get("client"), details.get("path"))
