"""The one idempotent reconcile of a RealtimeApp: observe -> decide -> apply -> report.

``Reconciler.reconcile`` is run by the one scheduler, the resync loop (``resync.Resync``: at
once for a new or changed app, every ``pollIntervalSeconds`` with the built-in autoscaler, else
every ``resync_seconds``), so a missed event, a deleted child or a changed one heals by itself.
One run:

1. read the app fresh and parse it (``InvalidSpec``: the status says so, nothing else is
   touched; the scheduler waits for the app to change);
2. observe (``observing``): what the app refers to, its Redis password and secret key (made
   once), the Redis Cluster formed or healed from the pods that exist (mode cluster), the queue
   statistics, the worker Deployments, and what autoscaling and migrations need;
3. decide (``deciding``, pure): the worker and interface counts, every child's manifest
   (pure builders), the Deployments held at the release they run while a new image's migration
   Job has not succeeded (``release``), the migration Job to make;
4. apply (``applying``): counts handed over to KEDA or an HPA, the migration Job, a
   server-side apply of every child, children no longer wanted removed (full passes);
5. report (``reporting``): the status (only when it changed), Events for what a person should
   see, the autoscaler's metrics.

Something a person must fix (a missing Secret, a refused child) ends the run with ``Blocked``
after the status is written: the scheduler runs it again after a delay, never in a tight loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from channelworks_operator import applying, autoscaler, deciding, spec
from channelworks_operator import scaling as scaling_module
from channelworks_operator.config import OperatorConfig
from channelworks_operator.deciding import Decision, World
from channelworks_operator.exceptions import ApiError, Blocked, InvalidSpec
from channelworks_operator.kube import Api
from channelworks_operator.metrics import Metrics
from channelworks_operator.observing import Known, Observer
from channelworks_operator.queue_metrics import StatsSource
from channelworks_operator.reporting import Applied, Reporter, problems

logger = logging.getLogger(__name__)


class AppLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each line with ``[namespace/name]``."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['app'] if self.extra else '?'}] {msg}", kwargs


@dataclass
class AppMemory:
    """What the reconciler keeps about one app between runs (losing it on restart is harmless)."""

    memo: applying.Memo = field(default_factory=applying.Memo)
    generation: int = -1
    last_full: float = float("-inf")
    # The autoscaler's recent recommendations per worker pool (None: the default pool).
    histories: dict[str | None, tuple[autoscaler.Recommendation, ...]] = field(default_factory=dict)
    interface_history: tuple[autoscaler.Recommendation, ...] = ()  # the interface autoscaler's
    cluster_converged: bool = False
    references_ok: bool = False
    migration_logs: dict[str, str] = field(default_factory=dict)  # a failed Job's, by name
    ingress_hosts: tuple[str, ...] | None = None  # hosts of Ingresses to the interface

    def known(self, full: bool) -> Known:
        """What the next observation may skip: references and Ingresses between full passes
        (references only while nothing lacked), a failed Job's log read before."""
        return Known(
            check_references=full or not self.references_ok,
            ingress_hosts=None if full else self.ingress_hosts,
            migration_logs=self.migration_logs,
        )

    def remembered(self) -> deciding.Remembered:
        return deciding.Remembered(self.histories, self.interface_history, self.cluster_converged)

    def observed(self, app: spec.App, world: World) -> None:
        if world.references_checked:
            self.references_ok = not world.problems
        self.ingress_hosts = world.ingress_hosts
        if world.cluster is not None:
            self.cluster_converged = world.cluster.converged
        job = deciding.migration_job_name(app)
        if world.failure_log is None:
            self.migration_logs.pop(job, None)  # a Job made again has a log of its own
        else:
            self.migration_logs[job] = world.failure_log

    def decided(self, decision: Decision) -> None:
        self.histories = decision.histories
        self.interface_history = decision.interface_history


class Reconciler:
    def __init__(
        self,
        config: OperatorConfig,
        kube: Api,
        stats: StatsSource,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.kube = kube
        self.stats = stats
        self.metrics = metrics
        self.clock = clock
        self.observer = Observer(config, kube, stats)
        self.reporter = Reporter(config, kube, metrics)
        self._memory: dict[str, AppMemory] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def forget(self, key: str, uid: str) -> None:
        """The app is gone: drop what was kept about it."""
        self._memory.pop(uid, None)
        self._locks.pop(key, None)
        await self.stats.forget(key)
        namespace, _, name = key.partition("/")
        self.metrics.forget_app(f"{namespace}.{name}")

    async def reconcile(self, body: Mapping[str, Any], *, full: bool = True) -> None:
        """Bring one app's children and status in line with its spec (see the module doc)."""
        metadata = body.get("metadata", {})
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        started = time.perf_counter()
        result = "error"
        try:
            async with lock:
                await self._run(
                    key, str(metadata.get("namespace")), str(metadata.get("name")), full
                )
            result = "success"
        except InvalidSpec:
            result = "invalid"
            raise
        except Blocked:
            result = "blocked"
            raise
        finally:
            self.metrics.reconcile_total.labels(result=result).inc()
            self.metrics.reconcile_duration.observe(time.perf_counter() - started)

    async def _run(self, key: str, namespace: str, name: str, full: bool) -> None:
        obj = await self.observer.app(namespace, name)
        if obj is None or obj.get("metadata", {}).get("deletionTimestamp"):
            return  # deleted: owner references take the children away
        log = AppLogger(logger, {"app": key})
        memory = self._memory.setdefault(obj["metadata"]["uid"], AppMemory())
        try:
            app = spec.parse(obj)
        except InvalidSpec as error:
            await self.reporter.invalid(obj, error, log)
            raise
        now = self.clock()
        full = deciding.full_pass(
            full,
            generation=app.ref.generation,
            seen_generation=memory.generation,
            now=now,
            last_full=memory.last_full,
            resync_seconds=self.config.resync_seconds,
        )
        world = await self.observer.world(key, app, obj, memory.known(full), log)
        memory.observed(app, world)
        decision = deciding.decide(
            app,
            world,
            memory.remembered(),
            self.config,
            now=now,
            field_manager=self.kube.field_manager,
        )
        memory.decided(decision)
        applied = await self._apply(app, world, decision, memory, full, log)
        found = problems(world, applied)
        await self.reporter.report(app, world, decision, applied, found, log)
        if full:
            memory.last_full = now
        memory.generation = app.ref.generation
        if found:
            raise Blocked(found[0].message, delay=self.config.retry_delay_seconds)

    async def _apply(
        self,
        app: spec.App,
        world: World,
        decision: Decision,
        memory: AppMemory,
        full: bool,
        log: AppLogger,
    ) -> Applied:
        """Write what was decided: hand-overs, the migration Job, every child; then, on full
        passes, remove the children no longer wanted."""
        for handover in decision.handovers:
            # KEDA or an HPA takes a count over: keep it (see ``scaling.holds_replicas``)
            # before this run's apply leaves ``replicas`` out.
            manager = scaling_module.HANDOVER_MANAGER
            await asyncio.to_thread(self.kube.apply, handover, field_manager=manager)
            name, count = handover["metadata"]["name"], handover["spec"]["replicas"]
            log.info("handed the count of %s (%s) over to the autoscaler", name, count)
        if decision.job is not None:
            try:
                await asyncio.to_thread(self.kube.create, decision.job)
            except ApiError as error:
                if not error.conflict:
                    raise
            name = decision.job["metadata"]["name"]
            log.info("created Job %s: the migrations of %s, before the rollout", name, app.image)
        before = dict(memory.memo.applied)
        report = await asyncio.to_thread(
            applying.apply_all, self.kube, decision.manifests, memory.memo, full=full, app=app
        )
        for child, outcome in report.outcomes.items():
            self.metrics.objects_applied.labels(kind=child.split("/", 1)[0], outcome=outcome).inc()
        pruned: list[str] = []
        if full:
            pruned = await asyncio.to_thread(
                applying.prune,
                self.kube,
                app.ref,
                decision.manifests,
                memory.memo,
                served=world.served,
            )
        return Applied(report, before, pruned)
