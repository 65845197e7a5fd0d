"""``channelworks-worker``: run a Django project's consumers from the channel layer.

Reads its configuration once (see :mod:`channelworks_worker.config`), sets Django up, loads the
routing, builds the layer, serves ``/healthz``, ``/readyz`` and ``/metrics``, and runs the worker
until SIGTERM or SIGINT, when it drains and exits 0. A configuration error exits 2; a worker whose
consumer threads are all stuck past the time limit stops itself and exits 3.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import prometheus_client
from django.core.exceptions import ImproperlyConfigured

import channelworks
from channelworks import asgi, conf, exceptions, gc_tuning, routing
from channelworks.layers import base, readiness
from channelworks.layers import env as layer_env
from channelworks.layers import metrics as layer_metrics
from channelworks.process import logs, probes
from channelworks_worker import config as config_module
from channelworks_worker import metrics, runtime

logger = logging.getLogger("channelworks_worker")
EXIT_CONFIG = 2
EXIT_WEDGED = 3  # every consumer thread was stuck past the time limit


def load_routing(config: config_module.WorkerConfig) -> routing.Router:
    """Set Django up and return the router: ``CHANNELWORKS_ROUTING``, else the settings'."""
    import django
    from django.conf import settings

    if config.settings_module is not None:
        os.environ["DJANGO_SETTINGS_MODULE"] = config.settings_module
    elif not settings.configured:
        settings.configure()
    django.setup()
    if config.routing is not None:
        return routing.Router(config.routing)
    return conf.get_router()


async def serve(
    config: config_module.WorkerConfig,
    layer: base.ChannelworksLayer,
    router: routing.Router,
    registry: prometheus_client.CollectorRegistry,
) -> int:
    """Run the worker with probes until a stop signal; what ``main`` runs on its loop."""
    asgi.channel_layers.set(channelworks.DEFAULT_CHANNEL_LAYER, layer)
    worker_metrics = metrics.WorkerMetrics(registry)
    layer_metrics.ChannelFullCollector(layer, registry)
    channels = runtime.select_channels(
        router.channels, config.only_channels, config.exclude_channels
    )
    worker = runtime.Worker(
        layer,
        router,
        worker_metrics,
        concurrency=config.concurrency,
        channels=channels,
        drain_seconds=config.drain_seconds,
        limits=config.protections,
    )
    layer_watch = readiness.LayerWatch(layer, config.layer.tuning.readiness_grace_seconds)
    layer_watch.start()
    server = probes.ProbeServer(
        config.metrics_host,
        config.metrics_port,
        registry,
        ready=lambda: worker.ready and layer_watch.ready,
        live=lambda: worker.live,
    )
    await server.start()
    loop = asyncio.get_running_loop()
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    for number in stop_signals:
        loop.add_signal_handler(number, worker.stop)
    try:
        await worker.run()
    finally:
        for number in stop_signals:
            loop.remove_signal_handler(number)
        await server.close()
        await layer_watch.stop()
        await layer.close()
    return 0 if worker.live else EXIT_WEDGED


def main() -> int:
    """Entry point of the ``channelworks-worker`` command."""
    try:
        config = config_module.from_env(os.environ)
    except exceptions.ConfigurationError as error:
        print(f"channelworks-worker: {error}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(config.log_format, config.log_level)
    try:
        router = load_routing(config)
        layer = layer_env.build_layer(config.layer)
    except (
        exceptions.ConfigurationError,
        exceptions.InvalidRoute,
        ImproperlyConfigured,
        ImportError,
    ) as error:
        logger.error("cannot start the worker: %s", error)
        return EXIT_CONFIG
    logger.info("worker for %s starting (layer mode %s)", config.layer.app, config.layer.mode)
    gc_tuning.tune_for_serving()
    try:
        return asyncio.run(serve(config, layer, router, prometheus_client.REGISTRY))
    except exceptions.ConfigurationError as error:
        logger.error("cannot start the worker: %s", error)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
