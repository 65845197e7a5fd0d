"""The resync loop is the operator's one scheduler, and the operator's exceptions are its retry
policy: a new or changed app runs at once with a full pass; an InvalidSpec (a PermanentError)
is not retried until the app changes; a Blocked run (a TemporaryError) runs again after its own
delay; any other failure after --retry-delay-seconds; a change seen while a run goes on makes
the app run again right after. In process, with a fake reconciler and an injected clock: no
API server, no sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from channelworks_operator import config
from channelworks_operator.exceptions import ApiError, Blocked, InvalidSpec
from channelworks_operator.metrics import Metrics
from channelworks_operator.resync import NEVER, Resync
from tests.operator import samples
from tests.operator.fake_kube import Clock

KEY = "demo/chat"
SETTINGS = config.load(
    {
        "CHANNELWORKS_OPERATOR_RESYNC_SECONDS": "60",
        "CHANNELWORKS_OPERATOR_RETRY_DELAY_SECONDS": "30",
    }
)


class ScriptedReconciler:
    """Runs record (body generation, full); each run raises the next scripted error, if any."""

    def __init__(self, *errors: BaseException | None) -> None:
        self.errors = list(errors)
        self.runs: list[tuple[Any, bool]] = []
        self.during: Any = None  # called inside a run (to change the app meanwhile)

    async def reconcile(self, body: Mapping[str, Any], *, full: bool = True) -> None:
        self.runs.append((body["metadata"]["generation"], full))
        if self.during is not None:
            await self.during()
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error

    async def forget(self, key: str, uid: str) -> None:
        pass


def _scheduler(reconciler: ScriptedReconciler) -> tuple[Resync, Clock]:
    clock = Clock()
    resync = Resync(SETTINGS, reconciler, Metrics(CollectorRegistry()), clock=clock)  # type: ignore[arg-type]
    return resync, clock


async def _tick(resync: Resync) -> int:
    """Start what is due and let it finish; how many runs started."""
    started = resync.start_due(asyncio.Semaphore(4))
    await asyncio.gather(*started)
    return len(started)


async def test_a_new_app_runs_at_once_then_every_poll_interval() -> None:
    reconciler = ScriptedReconciler()
    resync, clock = _scheduler(reconciler)
    await resync.observe(None, samples.app_body())
    assert await _tick(resync) == 1
    assert reconciler.runs == [(1, True)]
    # The built-in autoscaler's pollIntervalSeconds (15 by default), under resync_seconds.
    assert resync.due(KEY) == (clock.now + 15, False)
    await resync.observe("MODIFIED", samples.app_body())  # a status write: nothing changed
    clock.now += 14
    assert await _tick(resync) == 0
    clock.now += 1
    assert await _tick(resync) == 1
    assert reconciler.runs[-1] == (1, False)


async def test_an_invalid_spec_waits_for_the_app_to_change() -> None:
    reconciler = ScriptedReconciler(InvalidSpec("spec.interface.replicas", "not a number"))
    resync, clock = _scheduler(reconciler)
    await resync.observe(None, samples.app_body())
    await _tick(resync)
    assert resync.due(KEY) == (NEVER, True)
    clock.now += 3600
    assert await _tick(resync) == 0, "an invalid spec was retried"
    await resync.observe("MODIFIED", samples.app_body(generation=2))
    assert await _tick(resync) == 1
    assert reconciler.runs == [(1, True), (2, True)]


async def test_a_blocked_run_is_retried_after_its_own_delay() -> None:
    reconciler = ScriptedReconciler(Blocked("secret demo/redis-password not found", delay=7))
    resync, clock = _scheduler(reconciler)
    await resync.observe(None, samples.app_body())
    await _tick(resync)
    clock.now += 6.9
    assert await _tick(resync) == 0
    clock.now += 0.1
    assert await _tick(resync) == 1


async def test_any_other_failure_is_retried_after_the_retry_delay_with_the_pass_it_owed() -> None:
    reconciler = ScriptedReconciler(ApiError(500, "Internal Server Error", "etcd timeout"))
    resync, clock = _scheduler(reconciler)
    await resync.observe(None, samples.app_body())
    await _tick(resync)
    assert resync.due(KEY) == (clock.now + 30, True)
    clock.now += 30
    assert await _tick(resync) == 1
    assert reconciler.runs == [(1, True), (1, True)]


async def test_a_change_during_a_run_runs_it_again_right_after() -> None:
    reconciler = ScriptedReconciler()
    resync, clock = _scheduler(reconciler)
    await resync.observe(None, samples.app_body())

    async def edited() -> None:
        reconciler.during = None
        await resync.observe("MODIFIED", samples.app_body(generation=2))

    reconciler.during = edited
    await _tick(resync)
    assert resync.due(KEY) == (clock.now, True)
    assert await _tick(resync) == 1
    assert reconciler.runs == [(1, True), (2, True)]


async def test_a_child_deleted_by_hand_brings_a_full_pass_a_second_later() -> None:
    reconciler = ScriptedReconciler()
    resync, clock = _scheduler(reconciler)
    await resync.observe(None, samples.app_body())
    await _tick(resync)
    child = {
        "metadata": {
            "namespace": "demo",
            "uid": "child-1",
            "generation": 1,
            "ownerReferences": [{"kind": "RealtimeApp", "name": "chat", "controller": True}],
        }
    }
    resync.poke(child, deleted=True)
    assert resync.due(KEY) == (clock.now + 1, True)


async def test_the_loop_runs_a_new_app_without_waiting_for_its_tick() -> None:
    reconciler = ScriptedReconciler()
    resync = Resync(SETTINGS, reconciler, Metrics(CollectorRegistry()))  # type: ignore[arg-type]
    stop = asyncio.Event()
    loop = asyncio.create_task(resync.run(stop))
    await asyncio.sleep(0)
    await resync.observe(None, samples.app_body())
    for _ in range(50):  # well under the loop's 0.5 s tick
        if reconciler.runs:
            break
        await asyncio.sleep(0.001)
    stop.set()
    await loop
    assert reconciler.runs == [(1, True)]


async def test_an_app_autoscaled_by_keda_runs_every_poll_interval_to_refresh_its_gauges() -> None:
    reconciler = ScriptedReconciler()
    resync, clock = _scheduler(reconciler)
    scaling = {
        "mode": "hpa",
        "pollIntervalSeconds": 2,
    }
    await resync.observe(None, samples.app_body(spec_fields={"worker": {"autoscaling": scaling}}))
    await _tick(resync)
    assert resync.due(KEY) == (clock.now + 2, False)
