"""The entry points: ``ensure`` brings the cluster to a shape, ``read_status`` only looks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from channelworks_operator.rediscluster import actions as act
from channelworks_operator.rediscluster import connections, exceptions, executor, planning
from channelworks_operator.rediscluster import status as st
from channelworks_operator.rediscluster.topology import Shape

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
SETTLE_POLL = 0.1
MAX_REPEATS = 3
MAX_FAILURES = 3
RETRY_DELAY = 0.5

Logger = logging.Logger | logging.LoggerAdapter[Any]


def _check_pods(pods: Sequence[str | None]) -> None:
    given = [address for address in pods if address is not None]
    if len(set(given)) != len(given):
        raise exceptions.InvalidShape(f"pod addresses are not unique: {given}")


@dataclass(frozen=True)
class Result:
    """What one ``ensure`` call did and where the cluster stands after it."""

    actions: tuple[act.Action, ...]
    """Every action carried out, in order (empty: the cluster needed nothing)."""
    status: st.ClusterStatus
    converged: bool
    """The cluster has exactly the shape asked for, healthy: the StatefulSet may now shrink to
    ``shape.size`` pods. While False, keep at least as many pods as before."""
    waiting: tuple[str, ...]
    """Why it is not converged, for a condition message (empty when converged)."""

    @property
    def changed(self) -> bool:
        return bool(self.actions)


async def ensure(
    pods: Sequence[str | None],
    shape: Shape,
    *,
    password: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    log: Logger | None = None,
) -> Result:
    """Form, heal or reshape the Redis Cluster of ``pods`` into ``shape``; idempotent.

    ``pods`` are the StatefulSet's pods in ordinal order as ``host:port`` (``None`` for a pod that
    is not ready); all of them, also those above ``shape.size`` while shards are being removed.
    Steps run until the cluster converges, something outside has to change first (pods not
    ready), or ``timeout`` seconds pass; a long reshard stops between slot batches and carries on
    in the next call. A failed step is retried from a fresh observation, a few times; then the
    call ends and the error is reported in ``waiting``.
    """
    _check_pods(pods)
    log = log or logger
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    performed: list[act.Action] = []
    previous: tuple[act.Action, ...] = ()
    repeats = failures = 0
    error: exceptions.ActionFailed | None = None
    async with connections.Connections(password) as clients:
        while True:
            observation = await connections.observe(clients, pods)
            step = planning.plan(observation, shape)
            waiting = step.waiting + step.settling
            if not step.actions:
                if step.settling and loop.time() < deadline:
                    await asyncio.sleep(SETTLE_POLL)
                    continue
                break
            repeats = repeats + 1 if step.actions == previous else 0
            previous = step.actions
            if error is not None and failures >= MAX_FAILURES:
                waiting += (str(error),)
                break
            if loop.time() >= deadline:
                waiting += (f"time budget of {timeout:g}s spent; continuing on the next run",)
                break
            if repeats >= MAX_REPEATS:
                waiting += (f"no progress: {step.actions[0].describe()} keeps being needed",)
                break
            try:
                for action in step.actions:
                    if performed and loop.time() >= deadline:
                        break  # the rest next round, which reports the spent budget
                    log.info("Redis cluster: %s", action.describe())
                    await executor.run(clients, action, deadline=deadline)
                    performed.append(action)
            except exceptions.ActionFailed as failed:
                # Often passing (a node busy or not yet agreeing); plan again from what is there.
                log.warning("Redis cluster: %s", failed)
                error, failures = failed, failures + 1
                await asyncio.sleep(RETRY_DELAY * failures)
    return Result(
        actions=tuple(performed),
        status=st.summarize(observation),
        converged=step.converged,
        waiting=() if step.converged else waiting,
    )


def statefulset_replicas(current: int, shape: Shape, *, converged: bool) -> int:
    """How many pods the StatefulSet should run: grow to ``shape.size`` at once, but shrink only
    once ``ensure`` converged (the nodes above the shape are drained and detached by then)."""
    return shape.size if converged or current < shape.size else current


async def read_status(
    pods: Sequence[str | None], *, password: str | None = None
) -> st.ClusterStatus:
    """The cluster's status without changing anything."""
    async with connections.Connections(password) as clients:
        return st.summarize(await connections.observe(clients, pods))
