"""Observe: what one reconcile of an app reads before it decides (``World``).

The first of a run's four steps (observe -> decide -> apply -> report, see ``reconcile``). It
asks the API server (through the ``kube.Api`` adapter, its blocking calls in a thread) and the
channel layer, and reads only what the app's spec needs: the Redis pods only for a managed
Redis, the interface Deployment and its connections only with interface autoscaling, the
migration Jobs and the running Deployments only while an image waits for its migrations.

Two parts of it make things on the way, as they always did, because what follows depends on
them: the app's generated Secrets (the Redis password, Django's secret key) are made once when
missing, and in mode ``cluster`` the Redis Cluster is formed or healed from the pods that are
ready (``rediscluster`` has its own observe -> plan -> execute loop, bounded in time) before
its queues can be read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from channelworks_operator import channel_layer, references, release, spec, status
from channelworks_operator import scaling as scaling_module
from channelworks_operator.autoscaler import InterfaceLoad, QueueSnapshot
from channelworks_operator.builders import django as django_builders
from channelworks_operator.builders import meta, migrate
from channelworks_operator.builders.workloads import worker_name
from channelworks_operator.config import OperatorConfig
from channelworks_operator.deciding import World, migration_due, migration_job_name
from channelworks_operator.exceptions import ApiError, QueueStatsUnavailable
from channelworks_operator.kube import Api
from channelworks_operator.queue_metrics import StatsSource

logger = logging.getLogger(__name__)

INGRESS = ("networking.k8s.io/v1", "Ingress")
OPTIONAL_KINDS = (
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
)
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True)
class Known:
    """What the reconciler remembers of earlier runs that spares reads in this one."""

    check_references: bool = True  # read the referenced Secrets and ConfigMaps again
    ingress_hosts: tuple[str, ...] | None = None  # None: read the Ingresses again
    migration_logs: Mapping[str, str] | None = None  # a failed Job's log tail, by Job name


class Observer:
    def __init__(self, config: OperatorConfig, kube: Api, stats: StatsSource) -> None:
        self.config = config
        self.kube = kube
        self.stats = stats

    async def app(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The app as it is now (None: gone)."""
        return await asyncio.to_thread(self.kube.get, spec.API_VERSION, spec.KIND, namespace, name)

    async def world(
        self, key: str, app: spec.App, obj: Mapping[str, Any], known: Known, log: Log
    ) -> World:
        """Read everything the run decides from (see the module doc)."""
        namespace = app.ref.namespace
        problems: tuple[status.Problem, ...] = ()
        if known.check_references:
            problems = tuple(await asyncio.to_thread(references.check, self.kube, app))
        password, _ = await asyncio.to_thread(references.redis_password, self.kube, app)
        await asyncio.to_thread(references.django_secret_key, self.kube, app)
        hosts = known.ingress_hosts
        if hosts is None:
            hosts = await asyncio.to_thread(self._ingress_hosts, app)
        served = await asyncio.to_thread(self._served)

        redis = app.channel_layer.redis
        redis_set: Mapping[str, Any] | None = None
        cluster = None
        if redis.managed:
            redis_set = await asyncio.to_thread(
                self.kube.get, "apps/v1", "StatefulSet", namespace, meta.redis_name(app.ref)
            )
        if redis.mode == "cluster" and redis_set is not None:
            cluster = await self._form_cluster(app, redis_set, password, log)
        snapshot, stats_error = await self._read_stats(key, app, redis_set, cluster, password)
        workers = {
            pool.name: await asyncio.to_thread(
                self.kube.get, "apps/v1", "Deployment", namespace, worker_name(app.ref, pool)
            )
            for pool in app.pools
        }
        world = World(
            obj=obj,
            problems=problems,
            references_checked=known.check_references,
            password=password,
            ingress_hosts=hosts,
            served=served,
            redis_set=redis_set,
            cluster=cluster,
            snapshot=snapshot,
            stats_error=stats_error,
            workers=workers,
        )
        world = await self._interfaces(key, app, world)
        return await self._migrations(app, world, known.migration_logs or {})

    # --- the parts ---------------------------------------------------------------------------

    def _served(self) -> dict[tuple[str, str], bool]:
        """Which optional APIs the API server serves (discovery, cached by the adapter)."""
        served = {item: self.kube.serves(*item) for item in OPTIONAL_KINDS}
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

    async def _form_cluster(
        self, app: spec.App, redis_set: Mapping[str, Any], password: str | None, log: Log
    ) -> channel_layer.ClusterOutcome:
        ready = int((redis_set.get("status") or {}).get("readyReplicas", 0))
        if ready == 0:
            return channel_layer.ClusterOutcome(False, 0, "", ("no Redis pod is ready yet",), ())
        pods = await self._pods(app, meta.CHANNEL_LAYER)
        count = max(app.channel_layer.redis.nodes, int(redis_set["spec"].get("replicas", 0)))
        addresses = channel_layer.pod_addresses(pods, app.ref, count)
        return await channel_layer.form(addresses, app, password, log=log)

    async def _pods(self, app: spec.App, component: str) -> list[dict[str, Any]]:
        """The app's pods of one component."""
        selector = meta.selector_string(app.ref, component)
        return await asyncio.to_thread(self.kube.list, "v1", "Pod", app.ref.namespace, selector)

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

    async def _interfaces(self, key: str, app: spec.App, world: World) -> World:
        """spec.interface.autoscaling: the interface Deployment, what its pods report (open
        WebSockets, CPU; not read when the layer could not be read for the queue statistics
        either) and which of its pods are draining (being deleted)."""
        if not app.interface.autoscaling.enabled:
            return world
        interface = await asyncio.to_thread(
            self.kube.get, "apps/v1", "Deployment", app.ref.namespace, meta.interface_name(app.ref)
        )
        load: InterfaceLoad | None = None
        if world.stats_error is None:
            target = channel_layer.target(app, world.password)
            timeout = self.config.stats_timeout_seconds
            try:
                load = await self.stats.interface_load(key, target, timeout)
            except QueueStatsUnavailable:
                load = None
        pods = await self._pods(app, meta.INTERFACE)
        draining = tuple(
            sorted(
                pod["metadata"]["name"]
                for pod in pods
                if pod["metadata"].get("deletionTimestamp") is not None
            )
        )
        return replace(world, interface=interface, load=load, draining=draining)

    async def _migrations(
        self, app: spec.App, world: World, known_logs: Mapping[str, str]
    ) -> World:
        """While spec.image waits for its migrations: the app's migration Jobs, the log of its
        Job if that failed (read once per Job) and the Deployments as they run (to hold)."""
        if not migration_due(app, world.previous_status):
            return world
        namespace = app.ref.namespace
        selector = meta.selector_string(app.ref, meta.MIGRATE)
        found = await asyncio.to_thread(self.kube.list, "batch/v1", "Job", namespace, selector)
        jobs = tuple(release.JobState.of(job) for job in found)
        name = migration_job_name(app)
        mine = next((job for job in jobs if job.name == name), None)
        failure_log = None
        if mine is not None and mine.state == release.STATE_FAILED:
            failure_log = known_logs.get(name)
            if failure_log is None:
                failure_log = await asyncio.to_thread(self._job_log, namespace, name)
        labels = ",".join(f"{k}={v}" for k, v in meta.selector_labels(app.ref).items())
        running = await asyncio.to_thread(
            self.kube.list, "apps/v1", "Deployment", namespace, labels
        )
        live = {meta.object_key({"kind": "Deployment", **item}): item for item in running}
        return replace(world, jobs=jobs, failure_log=failure_log, live=live)

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
