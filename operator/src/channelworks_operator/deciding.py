"""Decide (pure): from what a run observed, what it writes: the worker and interface counts,
every child's manifest, the migration Job to make, the counts to hand over to KEDA or an HPA.

The second of a run's four steps (observe -> decide -> apply -> report, see ``reconcile``). No
I/O and no clock: the run's time (``now``, monotonic seconds) and what the reconciler
remembers (the autoscalers' recent recommendations, whether the Redis Cluster converged) come
in as arguments, and what is to be remembered next goes out in the ``Decision``; the tests
call it with hand-made observations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channelworks_operator import autoscaler, builders, release, spec, status
from channelworks_operator import scaling as scaling_module
from channelworks_operator.autoscaler import InterfaceLoad, QueueSnapshot
from channelworks_operator.builders import migrate

if TYPE_CHECKING:  # types only: forming the cluster is I/O (done when observing), and the
    # settings are read (by main) with the SDK's environment readers
    from channelworks_operator import channel_layer
    from channelworks_operator.config import OperatorConfig

History = tuple[autoscaler.Recommendation, ...]


@dataclass(frozen=True)
class World:
    """Everything a run decides from, as read at the start of the run."""

    obj: Mapping[str, Any]  # the RealtimeApp
    problems: tuple[status.Problem, ...]  # referenced objects that are missing or wrong
    references_checked: bool
    password: str | None
    ingress_hosts: tuple[str, ...]
    served: Mapping[tuple[str, str], bool]  # optional APIs the API server serves
    redis_set: Mapping[str, Any] | None  # the managed Redis StatefulSet
    cluster: channel_layer.ClusterOutcome | None  # mode cluster: the cluster after forming
    snapshot: QueueSnapshot | None
    stats_error: str | None  # why the queues could not be read
    workers: Mapping[str | None, Mapping[str, Any] | None]  # worker Deployments, by pool name
    interface: Mapping[str, Any] | None = None  # read with interface autoscaling on
    load: InterfaceLoad | None = None  # the interface pods' reports (autoscaling, readable)
    # Interface pods on their way out (a deletionTimestamp: draining), read with autoscaling.
    draining: tuple[str, ...] | None = None
    jobs: tuple[release.JobState, ...] = ()  # migration Jobs (listed only while one is due)
    failure_log: str | None = None  # the log tail of spec.image's failed migration Job
    live: Mapping[str, Mapping[str, Any]] | None = None  # Deployments as they run, by key

    @property
    def previous_status(self) -> Mapping[str, Any]:
        return self.obj.get("status") or {}


def migration_job_name(app: spec.App) -> str:
    """The name of spec.image's migration Job."""
    return migrate.job_name(app.ref, app.image)


def migration_due(app: spec.App, previous_status: Mapping[str, Any]) -> bool:
    """Whether spec.image still waits for its migrations (else no Job is listed at all)."""
    released = (previous_status.get("migration") or {}).get("releasedImage")
    return app.migrate.enabled and released != app.image


@dataclass(frozen=True)
class Remembered:
    """What the reconciler kept from the app's earlier runs that a decision depends on."""

    histories: Mapping[str | None, History]  # worker autoscaler, by pool name (None: default)
    interface_history: History = ()
    cluster_converged: bool = False


@dataclass(frozen=True)
class Decision:
    pools: list[scaling_module.PoolScaling]
    scaling: scaling_module.Scaling  # the pools added up
    worker: Mapping[str, Any] | None  # the worker Deployment the status reports
    interfaces: scaling_module.InterfaceScaling
    rollout: release.Plan
    manifests: list[builders.Manifest]  # every child, Deployments held while not released
    job: builders.Manifest | None  # the migration Job to make now
    handovers: list[dict[str, Any]]  # counts applied by HANDOVER_MANAGER before the apply
    histories: dict[str | None, History]  # to remember for the next run
    interface_history: History


def full_pass(
    asked: bool,
    *,
    generation: int,
    seen_generation: int,
    now: float,
    last_full: float,
    resync_seconds: float,
) -> bool:
    """Whether this run applies every child again (asked, a new generation, or it is time)."""
    return asked or seen_generation != generation or now - last_full >= resync_seconds


def redis_replicas(
    app: spec.App, redis_set: Mapping[str, Any] | None, cluster_converged: bool
) -> int | None:
    """Redis pods to run: the spec's count (None), except that a shrinking cluster keeps its
    pods until their slots have moved away (the cluster converged on the new shape)."""
    if redis_set is None or app.channel_layer.redis.mode != "cluster":
        return None
    current = int(redis_set.get("spec", {}).get("replicas", 0))
    if current > app.channel_layer.redis.nodes and not cluster_converged:
        return current
    return None


def decide(
    app: spec.App,
    world: World,
    remembered: Remembered,
    config: OperatorConfig,
    *,
    now: float,
    field_manager: str,
) -> Decision:
    """What this run writes (see the module doc); ``field_manager`` is the operator's own."""
    pools = scaling_module.decide_pools(
        app,
        world.workers,
        world.snapshot,
        world.served,
        now=now,
        histories=remembered.histories,
    )
    scaling, worker = scaling_module.combined(pools)
    interfaces = scaling_module.decide_interfaces(
        app,
        world.interface,
        world.load,
        now=now,
        history=remembered.interface_history,
        served=world.served,
    )
    default = pools[0] if pools[0].pool.name is None else None
    converged = world.cluster.converged if world.cluster else remembered.cluster_converged
    ctx = builders.BuildContext(
        interface_image=config.interface_image,
        redis_image=config.redis_image,
        operator_namespace=config.operator_namespace,
        operator_pod_labels=config.operator_pod_labels,
        worker_replicas=default.scaling.build_replicas if default else None,
        interface_replicas=interfaces.build_replicas,
        pool_replicas=tuple(
            (item.pool.name, item.scaling.build_replicas)
            for item in pools
            if item.pool.name is not None
        ),
        redis_password=world.password,
        redis_replicas=redis_replicas(app, world.redis_set, converged),
        monitor_kinds=frozenset(
            kind
            for kind in ("PodMonitor", "ServiceMonitor")
            if world.served.get(("monitoring.coreos.com/v1", kind))
        ),
        keda_available=world.served.get(scaling_module.KEDA, False),
        ingress_hosts=world.ingress_hosts,
    )
    manifests = builders.desired(app, ctx)
    previous = world.previous_status.get("migration")
    rollout = release.plan(app, previous, world.jobs, world.failure_log)
    job = migrate.job(app, release.worker_deployment(manifests)) if rollout.create_job else None
    if not rollout.released:
        manifests = release.hold(manifests, world.live or {})
    return Decision(
        pools=pools,
        scaling=scaling,
        worker=worker,
        interfaces=interfaces,
        rollout=rollout,
        manifests=manifests,
        job=job,
        handovers=[
            scaling_module.handover(deployment)
            for deployment in scaling_module.handovers(pools, interfaces)
            if scaling_module.holds_replicas(deployment, field_manager)
        ],
        histories={
            item.pool.name: item.scaling.decision.history
            for item in pools
            if item.scaling.decision is not None
        },
        interface_history=interfaces.decision.history if interfaces.decision else (),
    )
