"""Report: the status of an app after a run (written only when it changed), the Events a person
should see (each once), and the autoscaler's metrics.

The last of a run's four steps (observe -> decide -> apply -> report, see ``reconcile``). The
workloads are reported as this run's apply returned them (else as read when observing, else
read again); the status itself is built by the pure ``status.build``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from channelworks_operator import applying, channel_layer, notices, spec, status, timestamps
from channelworks_operator import scaling as scaling_module
from channelworks_operator.builders import meta
from channelworks_operator.builders.workloads import worker_name
from channelworks_operator.config import OperatorConfig
from channelworks_operator.deciding import Decision, World
from channelworks_operator.exceptions import InvalidSpec
from channelworks_operator.kube import Api
from channelworks_operator.metrics import Metrics

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True)
class Applied:
    """What the apply step did."""

    report: applying.Report
    before: Mapping[str, tuple[str, str]]  # the apply memo as it was before this run
    pruned: list[str] = field(default_factory=list)


def problems(world: World, applied: Applied) -> tuple[status.Problem, ...]:
    """What keeps the app from being Ready that a person must fix (the run ends Blocked)."""
    found = list(world.problems)
    found += [
        status.Problem("ApplyRejected", f"failed to apply {what}: {why}")
        for what, why in applied.report.rejected
    ]
    found += [
        status.Problem(
            "ChildNotOwned",
            f"{what} exists and was not made for this app: the operator leaves it alone; "
            "delete or rename it, or set spec.adoptExisting: true to take it over",
        )
        for what in applied.report.not_owned
    ]
    return tuple(found)


def _short(key: str) -> str:
    kind, _, name = key.split("/", 2)
    return f"{kind}/{name}"


class Reporter:
    def __init__(self, config: OperatorConfig, kube: Api, metrics: Metrics) -> None:
        self.config = config
        self.kube = kube
        self.metrics = metrics

    async def report(
        self,
        app: spec.App,
        world: World,
        decision: Decision,
        applied: Applied,
        found: tuple[status.Problem, ...],
        log: Log,
    ) -> None:
        """Metrics, then the status (only when it changed), then the Events."""
        self._autoscaler_metrics(app, decision)
        wall = timestamps.now()  # one wall time for every timestamp this status gets
        observation = await self._observation(app, world, decision, applied, found, wall)
        previous = world.previous_status
        new_status = status.build(app, observation, previous, now=wall)
        if not status.same(new_status, previous):
            await self._write_status(world.obj, new_status)
        facts = notices.RunFacts(
            created=[_short(key) for key in applied.report.keys(applying.CREATED)],
            drifted=applying.drifted(applied.report, applied.before, decision.manifests),
            pruned=applied.pruned,
            cluster_actions=(
                channel_layer.actions_message(world.cluster.actions) if world.cluster else ""
            ),
            problem_reasons=frozenset(problem.reason for problem in found),
        )
        for notice in notices.notices(
            previous, new_status, facts, decision.scaling, decision.worker, decision.interfaces
        ):
            log.info("%s: %s", notice.reason, notice.message)  # each Event in the log too
            await self.event(world.obj, notice.type, notice.reason, notice.message)

    async def invalid(self, obj: Mapping[str, Any], error: InvalidSpec, log: Log) -> None:
        """The spec cannot be honoured: the condition and one Warning Event, nothing else."""
        previous = obj.get("status") or {}
        generation = int(obj.get("metadata", {}).get("generation", 0))
        message = f"the spec cannot be honoured: {error}"
        new_status = status.invalid(previous, generation, message, now=timestamps.now())
        if status.same(new_status, previous):
            return
        log.warning("%s", message)
        await self._write_status(obj, new_status)
        await self.event(obj, "Warning", status.INVALID_SPEC, message)

    async def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        await asyncio.to_thread(
            self.kube.post_event,
            obj,
            type_=type_,
            reason=reason,
            message=message,
            instance=self.config.identity,
        )

    # --- the parts ---------------------------------------------------------------------------

    def _autoscaler_metrics(self, app: spec.App, decision: Decision) -> None:
        self.metrics.autoscaled(app.ref.prefix, scaling_module.pool_figures(decision.pools))

    async def _observation(
        self,
        app: spec.App,
        world: World,
        decision: Decision,
        applied: Applied,
        found: tuple[status.Problem, ...],
        wall: str,
    ) -> status.Observation:
        report = applied.report
        interface = await self._workload(report, "Deployment", meta.interface_name(app.ref), app)
        workers_now = [
            status.Workload.of(
                await self._workload(
                    report, "Deployment", worker_name(app.ref, item.pool), app, item.worker
                )
            )
            for item in decision.pools
        ]
        redis_set = world.redis_set
        if app.channel_layer.redis.managed:
            redis_set = await self._workload(
                report, "StatefulSet", meta.redis_name(app.ref), app, redis_set
            )
        redis_state = status.Workload.of(redis_set)
        cluster = world.cluster
        ready_nodes = (
            cluster.ready_nodes
            if cluster is not None
            else redis_state.ready
            if redis_state is not None
            else 0
        )
        interface_block = scaling_module.interface_status_block(
            world.previous_status.get("interfaceAutoscaler"),
            decision.interfaces,
            decision.interfaces.deployment,  # as read before this run's apply changed it
            now=wall,
        )
        return status.Observation(
            interface=status.Workload.of(interface),
            worker=scaling_module.total(workers_now),
            desired_workers=decision.scaling.desired,
            layer=channel_layer.condition(app, redis_state, cluster, world.stats_error),
            layer_nodes=app.channel_layer.redis.nodes,
            layer_ready_nodes=ready_nodes,
            layer_url=channel_layer.display_url(app),
            autoscaling=scaling_module.with_interfaces(
                decision.scaling.condition, decision.interfaces
            ),
            autoscaler=scaling_module.status_block(
                world.previous_status.get("autoscaler"),
                decision.scaling,
                decision.worker,
                now=wall,
            ),
            interface_autoscaler=interface_block,
            interface_draining=scaling_module.draining_block(
                app, world.draining, status.Workload.of(interface), interface_block
            ),
            queue_depth=world.snapshot.depth if world.snapshot else None,
            oldest_age_seconds=world.snapshot.oldest_age_seconds if world.snapshot else None,
            problems=found,
            migration=decision.rollout.condition,
            migration_status=decision.rollout.status,
        )

    async def _workload(
        self,
        report: applying.Report,
        kind: str,
        name: str,
        app: spec.App,
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
        return await asyncio.to_thread(self.kube.get, "apps/v1", kind, app.ref.namespace, name)

    async def _write_status(self, obj: Mapping[str, Any], new_status: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self.kube.apply, status.manifest(obj, new_status), subresource="status"
        )
