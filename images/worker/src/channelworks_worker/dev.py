"""The worker runtime as ``channelworks dev`` runs it: the production worker, laptop settings.

This module is the entry point ``worker`` of the group ``channelworks.dev_runtimes`` (see this
package's pyproject.toml): the SDK's dev mode finds it there and drives it through
:class:`channelworks.dev.runtimes.WorkerRuntime`, so the SDK imports no runtime. The dev
settings: probes and metrics on any free loopback port, a short drain, text logs.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from channelworks import routing
from channelworks.dev.config import DevConfig
from channelworks.layers import base
from channelworks_worker import config as worker_config
from channelworks_worker import main as worker_main
from channelworks_worker import metrics, runtime


def workers(
    layer: base.ChannelworksLayer,
    router: routing.Router,
    count: int,
    concurrency: int,
    drain_seconds: float,
) -> list[runtime.Worker]:
    """``count`` workers on ``layer`` sharing one set of metrics (run them on one loop)."""
    shared = metrics.WorkerMetrics(CollectorRegistry())
    return [
        runtime.Worker(layer, router, shared, concurrency=concurrency, drain_seconds=drain_seconds)
        for _ in range(count)
    ]


def serve(
    config: DevConfig, layer: base.ChannelworksLayer, router: routing.Router, drain_seconds: float
) -> int:
    """One worker process as production runs it, with its probes on a free loopback port."""
    settings = worker_config.WorkerConfig(
        layer=config.layer_settings(),
        settings_module=config.settings_module,
        concurrency=config.concurrency,
        drain_seconds=drain_seconds,
        metrics_host="127.0.0.1",
        metrics_port=0,
        log_format="text",
        log_level=config.log_level,
    )
    return asyncio.run(worker_main.serve(settings, layer, router, CollectorRegistry()))


if TYPE_CHECKING:  # mypy checks that this module is what dev mode expects of it
    from channelworks.dev import runtimes
    from channelworks_worker import dev as _this_module

    _conforms: runtimes.WorkerRuntime = _this_module
