"""Reading an app's queue statistics from its channel layer (the autoscaler's input).

One ``channelworks.layers.RedisChannelLayer`` per app, kept between polls (its connections are
reused), built with the app's key prefix (``CHANNELWORKS_APP``): ``queue_stats()`` is two
pipelined round trips per shard whatever the load. Everything about the layer stays behind
``QueueStatsReader.read``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from channelworks.exceptions import ShardChangePending
from channelworks.layers.stats import LoadReport, QueueStats
from channelworks_operator.autoscaler import InterfaceLoad, QueueSnapshot
from channelworks_operator.exceptions import QueueStatsUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerTarget:
    """Where an app's channel layer is and how its keys are named."""

    url: str
    cluster: bool
    prefix: str
    password: str | None = field(default=None, repr=False)
    shards: int | None = None  # the pods' configured work shards; None: the layer's default
    # The work shards to bring the layer to before each read (online; None: leave it).
    wanted_shards: int | None = None


class StatsSource(Protocol):
    async def read(self, key: str, target: LayerTarget, timeout: float) -> QueueSnapshot: ...

    async def connections(self, key: str, target: LayerTarget, timeout: float) -> int: ...

    async def interface_load(
        self, key: str, target: LayerTarget, timeout: float
    ) -> InterfaceLoad: ...

    async def forget(self, key: str) -> None: ...

    async def close(self) -> None: ...


class QueueStatsReader:
    """Keeps a layer client per app (``key``); a changed target replaces the client."""

    def __init__(
        self,
        observe: Callable[[str, QueueStats], None] | None = None,
        observe_load: Callable[[str, InterfaceLoad], None] | None = None,
    ) -> None:
        """``observe(app prefix, stats)`` is called with every statistics read, and
        ``observe_load(app prefix, load)`` with every read of the interfaces' reports
        (metrics)."""
        self._layers: dict[str, tuple[LayerTarget, Any]] = {}
        self._observe = observe
        self._observe_load = observe_load

    def _layer(self, key: str, target: LayerTarget, timeout: float) -> Any:
        known = self._layers.get(key)
        if known is not None and known[0] == target:
            return known[1]
        from channelworks.layers import RedisChannelLayer

        host: dict[str, Any] = {"address": target.url}
        if target.password:
            host["password"] = target.password
        # Give up on an unreachable Redis well within the caller's timeout: the layer retries
        # in a task of its own that outlives a cancelled call.
        shards = {} if target.shards is None else {"shards": target.shards}
        layer = RedisChannelLayer(
            hosts=[host],
            prefix=target.prefix,
            cluster=True if target.cluster else None,
            retry_seconds=timeout / 2,
            **shards,
        )
        self._layers[key] = (target, layer)
        if known is not None:
            asyncio.get_running_loop().create_task(_close(known[1]))
        return layer

    async def read(self, key: str, target: LayerTarget, timeout: float) -> QueueSnapshot:
        """The current totals; QueueStatsUnavailable when the layer does not answer in time."""
        stats: QueueStats = await self._ask(
            key, target, timeout, "queue statistics", lambda layer: _shard_and_read(layer, target)
        )
        if self._observe is not None:
            self._observe(target.prefix, stats)
        channels = tuple(
            (name, int(item.depth), float(item.oldest_age_seconds))
            for name, item in sorted(stats.channels.items())
        )
        return QueueSnapshot(int(stats.total_depth), float(stats.oldest_age_seconds), channels)

    async def connections(self, key: str, target: LayerTarget, timeout: float) -> int:
        """The WebSockets open over the app's interface pods (``interface_load``)."""
        return (await self.interface_load(key, target, timeout)).connections

    async def interface_load(self, key: str, target: LayerTarget, timeout: float) -> InterfaceLoad:
        """The WebSockets open over the app's interface pods and the CPU their processes use,
        as they last reported them (``load_reports``); QueueStatsUnavailable when the layer
        does not answer in time."""
        reports: dict[str, LoadReport] = await self._ask(
            key, target, timeout, "the connection count", lambda layer: layer.load_reports()
        )
        load = summed(reports)
        if self._observe_load is not None:
            self._observe_load(target.prefix, load)
        return load

    async def _ask(
        self,
        key: str,
        target: LayerTarget,
        timeout: float,
        what: str,
        call: Callable[[Any], Awaitable[Any]],
    ) -> Any:
        try:
            layer = self._layer(key, target, timeout)
            async with asyncio.timeout(timeout):
                return await call(layer)
        except TimeoutError:
            await self.forget(key)
            raise QueueStatsUnavailable(
                f"failed to read {what}: no answer from the channel layer in {timeout:g}s"
            ) from None
        except Exception as error:  # any client error means: no statistics this time
            await self.forget(key)
            raise QueueStatsUnavailable(f"failed to read {what}: {error}") from error

    async def forget(self, key: str) -> None:
        known = self._layers.pop(key, None)
        if known is not None:
            await _close(known[1])

    async def close(self) -> None:
        for key in list(self._layers):
            await self.forget(key)


def summed(reports: dict[str, LoadReport]) -> InterfaceLoad:
    """The pods' reports added up; the CPU over the pods that report it (None: none does)."""
    cpu = [item.cpu_percent for item in reports.values() if item.cpu_percent is not None]
    return InterfaceLoad(
        sum(item.connections for item in reports.values()),
        sum(cpu) if cpu else None,
        len(reports),
    )


async def _close(layer: Any) -> None:
    try:
        await layer.close()
    except Exception as error:  # closing a broken connection may fail; nothing to do about it
        logger.debug("closing a channel layer client failed: %s", error)


async def _shard_and_read(layer: Any, target: LayerTarget) -> QueueStats:
    """Bring the layer to ``target.wanted_shards`` (one change at a time: while the previous
    one drains, the next read tries again), then read its queue statistics."""
    if target.wanted_shards is not None:
        try:
            state = await layer.set_work_shards(target.wanted_shards)
        except ShardChangePending as pending:
            logger.info("%s: %s", target.prefix, pending)
        else:
            if state.draining is not None and state.current.count == target.wanted_shards:
                logger.info(
                    "%s: work shards %d -> %d, draining the old ones",
                    target.prefix, state.draining.count, state.current.count,
                )  # fmt: skip
    stats: QueueStats = await layer.queue_stats()
    return stats
