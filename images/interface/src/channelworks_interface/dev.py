"""The interface server as ``channelworks dev`` runs it: the production server, laptop settings.

This module is the entry point ``interface`` of the group ``channelworks.dev_runtimes`` (see
this package's pyproject.toml): the SDK's dev mode finds it there and drives it through
:class:`channelworks.dev.runtimes.InterfaceRuntime`, so the SDK imports no runtime. The dev
settings: the address and port dev was given, probes and metrics on any free loopback port, a
short drain so that a reload is quick, text logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from channelworks.dev.config import DevConfig
from channelworks.layers import base
from channelworks_interface.config import InterfaceConfig
from channelworks_interface.metrics import Metrics
from channelworks_interface.server import InterfaceServer


def preload() -> None:
    """Import Twisted's web module on the calling thread. It tries an optional import
    (``twisted.web._http2``) and takes the failed module back out of ``sys.modules``; done in the
    server thread while Django's autoreloader walks ``sys.modules`` in the main one, that crashes
    the reloader (``KeyError``). Daphne itself stays in the server thread (importing it installs
    the reactor on that thread's loop)."""
    import twisted.web.http  # noqa: F401


class DevServer:
    """An :class:`InterfaceServer` as :class:`channelworks.dev.runtimes.Server`."""

    def __init__(self, server: InterfaceServer) -> None:
        self._server = server

    @property
    def listening(self) -> bool:
        return self._server.connections.listening

    @property
    def http_port(self) -> int | None:
        return self._server.http_port

    def run(self, install_signals: bool = True) -> int:
        return self._server.run(install_signals=install_signals)

    def request_drain(self) -> None:
        self._server.request_drain()


def server(config: DevConfig, layer: base.ChannelworksLayer) -> DevServer:
    """The production interface server with dev settings (see the module docstring)."""
    settings = InterfaceConfig(
        layer=config.layer_settings(),
        host=config.host,
        port=config.port,
        metrics_host="127.0.0.1",
        metrics_port=0,
        http_timeout=60.0,
        drain_delay=0.0,
        drain_window=0.25,
        grace_period=5.0,
        log_level=config.log_level,
        log_format="text",
    )
    return DevServer(InterfaceServer(settings, layer, Metrics(CollectorRegistry())))


if TYPE_CHECKING:  # mypy checks that this module is what dev mode expects of it
    from channelworks.dev import runtimes
    from channelworks_interface import dev as _this_module

    _conforms: runtimes.InterfaceRuntime = _this_module
