"""The one idempotent reconcile of a RealtimeApp, and the loop that runs it again and again.

``Reconciler.reconcile`` is called by the kopf handlers (create, update, resume) and by the
resync loop (``resync.Resync``: every app, every ``pollIntervalSeconds`` with the built-in
autoscaler, else every ``resync_seconds``), so a missed event, a deleted child or a changed one
heals by itself. One run:

1. read the app fresh and parse it (``InvalidSpec``: status says so, nothing else is touched);
2. check what it refers to (Secrets, ConfigMaps, pull secrets) and get the Redis password;
3. mode cluster: form / heal / reshape the Redis Cluster from the pods that exist;
4. read the queue statistics and let the autoscaler decide the worker replicas;
5. build every child (pure builders); with a new image, run its migration Job first and hold
   the Deployments at the release they run until it succeeded (``release``); server-side apply
   every child; remove children not wanted;
6. write the status (only when it changed) and post Events for what a person should see.

A missing dependency ends the run with ``Blocked`` after the status is written: the handlers
retry it after a delay, never in a tight loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from channelworks_operator import (
    applying,
    autoscaler,
    builders,
    channel_layer,
    notices,
    references,
    release,
    spec,
    status,
    timestamps,
)
from channelworks_operator import scaling as scaling_module
from channelworks_operator.autoscaler import QueueSnapshot
from channelworks_operator.builders import django as django_builders
from channelworks_operator.builders import meta, migrate
from channelworks_operator.builders.workloads import worker_name
from channelworks_operator.config import OperatorConfig
from channelworks_operator.exceptions import (
    ApiError,
    Blocked,
    InvalidSpec,
    QueueStatsUnavailable,
)
from channelworks_operator.kube import Kube
from channelworks_operator.metrics import Metrics
from channelworks_operator.queue_metrics import StatsSource

logger = logging.getLogger(__name__)

T = TypeVar("T")
INGRESS = ("networking.k8s.io/v1", "Ingress")


def _short(key: str) -> str:
    kind, _, name = key.split("/", 2)
    return f"{kind}/{name}"


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


class Reconciler:
    def __init__(
        self,
        config: OperatorConfig,
        kube: Kube,
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
        self._memory: dict[str, AppMemory] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def forget(self, key: str, uid: str) -> None:
        """The app is gone: drop what was kept about it."""
        self._memory.pop(uid, None)
        self._locks.pop(key, None)
        await self.stats.forget(key)
        namespace, _, name = key.partition("/")
        self.metrics.forget_app(f"{namespace}.{name}")

    # --- one run ---------------------------------------------------------------------------

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

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _run(self, key: str, namespace: str, name: str, full: bool) -> None:
        obj = await self._call(self.kube.get, spec.API_VERSION, spec.KIND, namespace, name)
        if obj is None or obj.get("metadata", {}).get("deletionTimestamp"):
            return  # deleted: owner references take the children away
        log = AppLogger(logger, {"app": key})
        memory = self._memory.setdefault(obj["metadata"]["uid"], AppMemory())
        try:
            app = spec.parse(obj)
        except InvalidSpec as error:
            await self._report_invalid(obj, error, log)
            raise
        now = self.clock()
        full = (
            full
            or memory.generation != app.ref.generation
            or now - memory.last_full >= self.config.resync_seconds
        )
        problems: list[status.Problem] = []
        if full or not memory.references_ok:  # between full passes, only while something lacks
            problems = list(await self._call(references.check, self.kube, app))
            memory.references_ok = not problems
        password, _ = await self._call(references.redis_password, self.kube, app)
        await self._call(references.django_secret_key, self.kube, app)
        if full or memory.ingress_hosts is None:  # read again on full passes
            memory.ingress_hosts = await self._call(self._ingress_hosts, app)
        served = await self._call(self._served)

        redis = app.channel_layer.redis
        redis_set: Mapping[str, Any] | None = None
        cluster = None
        if redis.managed:
            redis_set = await self._call(
                self.kube.get, "apps/v1", "StatefulSet", namespace, meta.redis_name(app.ref)
            )
        if redis.mode == "cluster" and redis_set is not None:
            cluster = await self._form_cluster(app, redis_set, password, log)
            memory.cluster_converged = cluster.converged

        snapshot, stats_error = await self._read_stats(key, app, redis_set, cluster, password)
        workers = {
            pool.name: await self._call(
                self.kube.get, "apps/v1", "Deployment", namespace, worker_name(app.ref, pool)
            )
            for pool in app.pools
        }
        pools = scaling_module.decide_pools(
            app, workers, snapshot, served, now=now, histories=memory.histories
        )
        memory.histories = {
            item.pool.name: item.scaling.decision.history
            for item in pools
            if item.scaling.decision is not None
        }
        scaling, worker = scaling_module.combined(pools)
        if scaling.decision is not None:
            self.metrics.desired_replicas.labels(app=app.ref.prefix).set(scaling.decision.desired)
            self.metrics.max_replicas.labels(app=app.ref.prefix).set(
                sum(pool.worker.autoscaling.max_replicas for pool in app.pools)
            )
        else:
            self.metrics.forget_autoscaler(app.ref.prefix)

        interfaces = await self._scale_interfaces(
            key, app, password, now, memory, readable=stats_error is None
        )
        default = pools[0] if pools[0].pool.name is None else None
        if default and default.scaling.build_replicas is None and default.worker is not None:
            await self._hand_over_replicas(default.worker, log)

        ctx = builders.BuildContext(
            interface_image=self.config.interface_image,
            redis_image=self.config.redis_image,
            operator_namespace=self.config.operator_namespace,
            operator_pod_labels=self.config.operator_pod_labels,
            worker_replicas=default.scaling.build_replicas if default else None,
            interface_replicas=interfaces.build_replicas,
            pool_replicas=tuple(
                (item.pool.name, item.scaling.build_replicas)
                for item in pools
                if item.pool.name is not None
            ),
            redis_password=password,
            redis_replicas=self._redis_replicas(app, redis_set, memory),
            monitor_kinds=frozenset(
                kind
                for kind in ("PodMonitor", "ServiceMonitor")
                if served.get(("monitoring.coreos.com/v1", kind))
            ),
            keda_available=served.get(scaling_module.KEDA, False),
            ingress_hosts=memory.ingress_hosts,
        )
        manifests = builders.desired(app, ctx)
        rollout = await self._migrate(app, obj, manifests, worker, memory, log)
        if not rollout.released:
            manifests = await self._held(app, manifests)
        before = dict(memory.memo.applied)
        report = await self._call(
            applying.apply_all, self.kube, manifests, memory.memo, full=full, app=app
        )
        for child, outcome in report.outcomes.items():
            self.metrics.objects_applied.labels(kind=child.split("/", 1)[0], outcome=outcome).inc()
        pruned: list[str] = []
        if full:
            pruned = await self._call(
                applying.prune, self.kube, app.ref, manifests, memory.memo, served=served
            )
        problems += [
            status.Problem("ApplyRejected", f"failed to apply {what}: {why}")
            for what, why in report.rejected
        ]
        problems += [
            status.Problem(
                "ChildNotOwned",
                f"{what} exists and was not made for this app: the operator leaves it alone; "
                "delete or rename it, or set spec.adoptExisting: true to take it over",
            )
            for what in report.not_owned
        ]

        interface = await self._observed(report, "Deployment", meta.interface_name(app.ref), app)
        workers_now = [
            status.Workload.of(
                await self._observed(
                    report, "Deployment", worker_name(app.ref, item.pool), app, before=item.worker
                )
            )
            for item in pools
        ]
        if redis.managed:
            redis_set = await self._observed(
                report, "StatefulSet", meta.redis_name(app.ref), app, before=redis_set
            )
        redis_state = status.Workload.of(redis_set)
        observation = status.Observation(
            interface=status.Workload.of(interface),
            worker=scaling_module.total(workers_now),
            desired_workers=scaling.desired,
            layer=channel_layer.condition(app, redis_state, cluster, stats_error),
            layer_nodes=redis.nodes,
            layer_ready_nodes=(
                cluster.ready_nodes
                if cluster is not None
                else redis_state.ready
                if redis_state is not None
                else 0
            ),
            layer_url=channel_layer.display_url(app),
            autoscaling=scaling_module.with_interfaces(scaling.condition, interfaces),
            autoscaler=scaling_module.status_block(
                (obj.get("status") or {}).get("autoscaler"), scaling, worker
            ),
            interface_autoscaler=scaling_module.interface_status_block(
                (obj.get("status") or {}).get("interfaceAutoscaler"), interfaces, interface
            ),
            queue_depth=snapshot.depth if snapshot else None,
            oldest_age_seconds=snapshot.oldest_age_seconds if snapshot else None,
            problems=tuple(problems),
            migration=rollout.condition,
            migration_status=rollout.status,
        )
        previous = obj.get("status") or {}
        new_status = status.build(app, observation, previous, now=timestamps.now())
        if not status.same(new_status, previous):
            await self._write_status(obj, new_status)
        facts = notices.RunFacts(
            created=[_short(key) for key in report.keys(applying.CREATED)],
            drifted=applying.drifted(report, before, manifests),
            pruned=pruned,
            cluster_actions=channel_layer.actions_message(cluster.actions) if cluster else "",
            problem_reasons=frozenset(problem.reason for problem in problems),
        )
        for notice in notices.notices(previous, new_status, facts, scaling, worker, interfaces):
            log.info("%s: %s", notice.reason, notice.message)  # each Event in the log too
            await self._event(obj, notice.type, notice.reason, notice.message)
        if full:
            memory.last_full = now
        memory.generation = app.ref.generation
        if problems:
            raise Blocked(problems[0].message, delay=self.config.retry_delay_seconds)

    # --- the parts of a run ----------------------------------------------------------------

    def _served(self) -> dict[tuple[str, str], bool]:
        """Which optional APIs the API server serves (discovery, cached in ``Kube``)."""
        wanted = [
            ("keda.sh/v1alpha1", "ScaledObject"),
            ("monitoring.coreos.com/v1", "PodMonitor"),
            ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ]
        served = {item: self.kube.serves(*item) for item in wanted}
        external = self.kube.served_kinds(scaling_module.EXTERNAL_METRICS) is not None
        served[scaling_module.EXTERNAL_METRICS_API] = external
        return served

    def _ingress_hosts(self, app: spec.App) -> tuple[str, ...]:
        """Hosts of the Ingresses that route to the app's interface (none without the API)."""
        if not self.kube.serves(*INGRESS):
            return ()
        try:
            found = self.kube.list(*INGRESS, app.ref.namespace)
        except ApiError as error:
            logger.warning("[%s] cannot list Ingresses: %s", app.ref.prefix, error)
            return ()
        return tuple(django_builders.ingress_hosts(app.ref, found))

    async def _scale_interfaces(
        self,
        key: str,
        app: spec.App,
        password: str | None,
        now: float,
        memory: AppMemory,
        *,
        readable: bool,
    ) -> scaling_module.InterfaceScaling:
        """spec.interface.autoscaling: the interface pods for the WebSockets they report (not
        read when the layer could not be read for the queue statistics either: no count)."""
        if not app.interface.autoscaling.enabled:
            memory.interface_history = ()
            return scaling_module.InterfaceScaling(None, None, None)
        interface = await self._call(
            self.kube.get, "apps/v1", "Deployment", app.ref.namespace, meta.interface_name(app.ref)
        )
        count: int | None = None
        if readable:
            target = channel_layer.target(app, password)
            try:
                count = await self.stats.connections(key, target, self.config.stats_timeout_seconds)
            except QueueStatsUnavailable:
                count = None
        run = scaling_module.decide_interfaces(
            app, interface, count, now=now, history=memory.interface_history
        )
        memory.interface_history = run.decision.history if run.decision else ()
        return run

    async def _hand_over_replicas(self, worker: Mapping[str, Any], log: AppLogger) -> None:
        """KEDA or an HPA takes the worker count over: keep the current count (see
        ``scaling.holds_replicas``) before this run's apply leaves ``replicas`` out."""
        if not scaling_module.holds_replicas(worker, self.kube.field_manager):
            return  # handed over already, or never written by the operator
        handover = scaling_module.handover(worker)
        manager = scaling_module.HANDOVER_MANAGER
        await self._call(self.kube.apply, handover, field_manager=manager)
        count = handover["spec"]["replicas"]
        log.info("handed the worker count (%s) over to the autoscaler", count)

    async def _form_cluster(
        self,
        app: spec.App,
        redis_set: Mapping[str, Any],
        password: str | None,
        log: AppLogger,
    ) -> channel_layer.ClusterOutcome:
        ready = int((redis_set.get("status") or {}).get("readyReplicas", 0))
        if ready == 0:
            return channel_layer.ClusterOutcome(False, 0, "", ("no Redis pod is ready yet",), ())
        pods = await self._call(
            self.kube.list,
            "v1",
            "Pod",
            app.ref.namespace,
            meta.selector_string(app.ref, meta.CHANNEL_LAYER),
        )
        count = max(app.channel_layer.redis.nodes, int(redis_set["spec"].get("replicas", 0)))
        addresses = channel_layer.pod_addresses(pods, app.ref, count)
        return await channel_layer.form(addresses, app, password, log=log)

    async def _migrate(
        self,
        app: spec.App,
        obj: Mapping[str, Any],
        manifests: list[builders.Manifest],
        worker: Mapping[str, Any] | None,
        memory: AppMemory,
        log: AppLogger,
    ) -> release.Plan:
        """The migration Jobs of the app as they are, and the one of spec.image made if due."""
        previous = (obj.get("status") or {}).get("migration")
        if not app.migrate.enabled or (previous or {}).get("releasedImage") == app.image:
            return release.plan(app, previous, ())  # nothing to run: no need to list the Jobs
        namespace = app.ref.namespace
        selector = meta.selector_string(app.ref, meta.MIGRATE)
        found = await self._call(self.kube.list, "batch/v1", "Job", namespace, selector)
        jobs = [release.JobState.of(job) for job in found]
        name = migrate.job_name(app.ref, app.image)
        mine = next((job for job in jobs if job.name == name), None)
        failure_log = None
        if mine is None or mine.state != release.STATE_FAILED:
            memory.migration_logs.pop(name, None)  # a Job made again has a log of its own
        else:
            if name not in memory.migration_logs:
                memory.migration_logs[name] = await self._call(self._job_log, namespace, name)
            failure_log = memory.migration_logs[name]
        plan = release.plan(app, previous, jobs, failure_log)
        if plan.create_job:
            job = migrate.job(app, release.worker_deployment(manifests))
            try:
                await self._call(self.kube.create, job)
            except ApiError as error:
                if not error.conflict:
                    raise
            log.info("created Job %s: the migrations of %s, before the rollout", name, app.image)
        return plan

    def _job_log(self, namespace: str, job: str) -> str:
        """The last lines of a failed migration Job's pod (or why they cannot be read)."""
        try:
            pods = self.kube.list("v1", "Pod", namespace, f"batch.kubernetes.io/job-name={job}")
            if not pods:
                return "(no pod of the Job is left to read the log of)"
            pod = max(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))
            text = self.kube.pod_log(
                namespace, pod["metadata"]["name"], migrate.CONTAINER, release.LOG_LINES
            )
        except ApiError as error:
            return f"(the log could not be read: {error})"
        return release.log_tail(text) or "(the log is empty)"

    async def _held(
        self, app: spec.App, manifests: list[builders.Manifest]
    ) -> list[builders.Manifest]:
        """The manifests with the Deployments held at the release they run (``release.hold``)."""
        selector = ",".join(f"{k}={v}" for k, v in meta.selector_labels(app.ref).items())
        found = await self._call(
            self.kube.list, "apps/v1", "Deployment", app.ref.namespace, selector
        )
        live = {meta.object_key({"kind": "Deployment", **item}): item for item in found}
        return release.hold(manifests, live)

    def _redis_replicas(
        self, app: spec.App, redis_set: Mapping[str, Any] | None, memory: AppMemory
    ) -> int | None:
        """Redis pods to run: the spec's count, except that a shrinking cluster keeps its pods
        until their slots have moved away (the cluster converged on the new shape)."""
        if redis_set is None or app.channel_layer.redis.mode != "cluster":
            return None
        current = int(redis_set.get("spec", {}).get("replicas", 0))
        wanted = app.channel_layer.redis.nodes
        if current > wanted and not memory.cluster_converged:
            return current
        return None

    async def _read_stats(
        self,
        key: str,
        app: spec.App,
        redis_set: Mapping[str, Any] | None,
        cluster: channel_layer.ClusterOutcome | None,
        password: str | None,
    ) -> tuple[QueueSnapshot | None, str | None]:
        redis = app.channel_layer.redis
        if redis.managed:
            ready = int(((redis_set or {}).get("status") or {}).get("readyReplicas", 0))
            if redis_set is None or ready == 0:
                return None, "the Redis pods are not ready yet"
            if cluster is not None and not cluster.converged:
                return None, "the Redis cluster is not formed yet"
        target = channel_layer.target(app, password)
        try:
            snapshot = await self.stats.read(key, target, self.config.stats_timeout_seconds)
        except QueueStatsUnavailable as error:
            return None, str(error)
        return snapshot, None

    async def _observed(
        self,
        report: applying.Report,
        kind: str,
        name: str,
        app: spec.App,
        *,
        before: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        """A workload as it is now: from this run's apply, else as read earlier in the run (when
        the apply was skipped), else read."""
        key = f"{kind}/{app.ref.namespace}/{name}"
        found = report.objects.get(key)
        if found is not None:
            return found
        if before is not None and report.outcomes.get(key) == applying.SKIPPED:
            return before
        return await self._call(self.kube.get, "apps/v1", kind, app.ref.namespace, name)

    async def _write_status(self, obj: Mapping[str, Any], new_status: dict[str, Any]) -> None:
        await self._call(self.kube.apply, status.manifest(obj, new_status), subresource="status")

    async def _report_invalid(
        self, obj: Mapping[str, Any], error: InvalidSpec, log: AppLogger
    ) -> None:
        previous = obj.get("status") or {}
        generation = int(obj.get("metadata", {}).get("generation", 0))
        message = f"the spec cannot be honoured: {error}"
        new_status = status.invalid(previous, generation, message, now=timestamps.now())
        if status.same(new_status, previous):
            return
        log.warning("%s", message)
        await self._write_status(obj, new_status)
        await self._event(obj, "Warning", status.INVALID_SPEC, message)

    async def _event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        await self._call(
            self.kube.post_event,
            obj,
            type_=type_,
            reason=reason,
            message=message,
            instance=self.config.identity,
        )
