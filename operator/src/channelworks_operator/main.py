"""``channelworks-operator``: read the settings once, then campaign for the Lease and act.

Exit codes: 0 after SIGTERM/SIGINT, 1 when leadership was lost (the pod restarts and waits for
the Lease again, as controller-runtime does), 2 for bad settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import kopf
import prometheus_client

from channelworks.process import logs
from channelworks_operator import (
    __version__,
    handlers,
    health,
    kube,
    leader,
    queue_metrics,
    unattended,
)
from channelworks_operator import config as config_module
from channelworks_operator.config import OperatorConfig
from channelworks_operator.exceptions import ConfigurationError
from channelworks_operator.metrics import Metrics
from channelworks_operator.reconcile import Reconciler
from channelworks_operator.resync import Resync

logger = logging.getLogger("channelworks_operator")


def setup_logging(config: OperatorConfig) -> None:
    logs.configure(config.log_format, config.log_level)
    level = logging.getLevelName(config.log_level)
    logging.getLogger("kopf").setLevel(level)
    # kopf says "Handler ... succeeded" for every watch event; our own lines say what was done.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, level))
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # The channel layer client logs each retry; the status reports an unreachable layer.
    logging.getLogger("channelworks.layers").setLevel(max(logging.WARNING, level))


async def _act(
    config: OperatorConfig,
    api_client: Any,
    client: kube.Kube,
    metrics: Metrics,
    stop: asyncio.Event,
) -> None:
    """Run kopf and the resync loop until ``stop`` is set (or kopf stops by itself)."""
    stats = queue_metrics.QueueStatsReader(
        observe=metrics.queues.observe, observe_load=metrics.observe_load
    )
    reconciler = Reconciler(config, client, stats, metrics)
    loop = Resync(config, reconciler, metrics)
    kopf_stop = asyncio.Event()
    resync_stop = asyncio.Event()
    registry = handlers.build_registry(loop, api_client, resync_stop)
    operator = asyncio.create_task(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=config.clusterwide,
            namespaces=list(config.namespaces),
            stop_flag=kopf_stop,
        ),
        name="kopf",
    )
    resync = asyncio.create_task(loop.run(resync_stop), name="resync")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({operator, resync, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        kopf_stop.set()
        resync_stop.set()
        stopping.cancel()
        await asyncio.gather(operator, resync, stopping, return_exceptions=True)
        await stats.close()
    for task in (operator, resync):
        if not task.cancelled() and task.exception() is not None:
            raise RuntimeError(f"{task.get_name()} stopped with an error") from task.exception()


async def serve(
    config: OperatorConfig, registry: prometheus_client.CollectorRegistry, metrics: Metrics
) -> int:
    """Serve the probes and metrics while the operator runs (on the same event loop)."""
    state = health.HealthState()
    servers = health.servers(
        state, config.bind_address, config.metrics_port, config.health_port, registry
    )
    try:
        for server in servers:
            try:
                await server.start()
            except OSError as error:
                where = f"{config.bind_address}:{server.port}"
                raise ConfigurationError(f"failed to listen on {where}: {error}") from None
        return await run(config, metrics, state)
    finally:
        for server in servers:
            await server.close()


async def run(config: OperatorConfig, metrics: Metrics, state: health.HealthState) -> int:
    api_client = kube.load_client(config.kubeconfig)
    client = kube.Kube(api_client)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    lost = False
    elector: leader.LeaderElector | None = None
    try:
        if config.leader_election:
            elector = leader.LeaderElector(client, config)
            state.role = health.STANDBY
            if not await leader.campaign(elector, config.retry_period_seconds, stop):
                return 0
        state.role = health.LEADER
        metrics.leader.set(1)
        logger.info(
            "acting on RealtimeApps in %s",
            ", ".join(config.namespaces) if config.namespaces else "all namespaces",
        )
        acting = asyncio.create_task(_act(config, api_client, client, metrics, stop))
        waits: set[asyncio.Task[Any]] = {acting}
        keeper = None
        if elector is not None:
            keeper = asyncio.create_task(
                leader.keep(elector, config.retry_period_seconds, config.renew_deadline_seconds)
            )
            waits.add(keeper)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        lost = keeper is not None and keeper.done()
        logger.info("stopping: %s", "leadership lost" if lost else "asked to stop")
        stop.set()
        await acting
        if not lost:  # no one may act after us: say so on each app (a new leader rewrites it)
            await asyncio.to_thread(unattended.mark_apps, client, config)
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
    finally:
        state.role = health.STOPPING
        metrics.leader.set(0)
        if elector is not None and not lost:
            await asyncio.to_thread(elector.release)
        api_client.close()
    return 1 if lost else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = config_module.load(os.environ, sys.argv[1:] if argv is None else argv)
    except ConfigurationError as error:
        print(f"channelworks-operator: {error}", file=sys.stderr)
        return 2
    setup_logging(config)
    registry = prometheus_client.CollectorRegistry()
    metrics = Metrics(registry)
    logger.info(
        "channelworks-operator %s starting as %s (metrics :%d, health :%d)",
        __version__,
        config.identity,
        config.metrics_port,
        config.health_port,
    )
    try:
        code = asyncio.run(serve(config, registry, metrics))
    except ConfigurationError as error:
        logger.error("%s", error)
        code = 2
    logger.info("channelworks-operator stopped (exit code %d)", code)
    return code
