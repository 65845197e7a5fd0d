"""A spec the operator cannot honour (for example one stored before a schema rule existed) ends
in an InvalidSpec condition, one Warning Event and a PermanentError: the scheduler does not run it
again until the app changes, and no child is touched."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from channelworks_operator import config, resync
from channelworks_operator.autoscaler import QueueSnapshot
from channelworks_operator.exceptions import InvalidSpec
from channelworks_operator.kube import Applied
from channelworks_operator.metrics import Metrics
from channelworks_operator.queue_metrics import LayerTarget
from channelworks_operator.reconcile import Reconciler
from tests.operator import samples


class RecordingKube:
    """Just enough of ``Kube`` for a run that stops at the spec: it records every write."""

    field_manager = "channelworks-operator"

    def __init__(self, app: dict[str, Any]) -> None:
        self.app = app
        self.applied: list[dict[str, Any]] = []
        self.events: list[dict[str, str]] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        assert kind == "RealtimeApp", f"a run with an invalid spec read {kind} {name}"
        return copy.deepcopy(self.app)

    def apply(self, manifest: dict[str, Any], *, subresource: str | None = None) -> Applied:
        self.applied.append({"subresource": subresource, **manifest})
        if subresource == "status":
            self.app["status"] = manifest["status"]
        return Applied(manifest, created=False)

    def post_event(
        self, involved: Any, *, type_: str, reason: str, message: str, instance: str
    ) -> None:
        self.events.append({"type": type_, "reason": reason, "message": message})


class NoStats:
    async def read(self, key: str, target: LayerTarget, timeout: float) -> QueueSnapshot:
        raise AssertionError("an invalid app's queue was read")

    async def connections(self, key: str, target: LayerTarget, timeout: float) -> int:
        raise AssertionError("an invalid app's connections were read")

    async def forget(self, key: str) -> None:
        pass

    async def close(self) -> None:
        pass


def test_invalid_spec_sets_a_condition_once_and_stops_retrying() -> None:
    body = samples.app_body(spec_fields={"interface": {"replicas": "two"}})
    kube = RecordingKube(body)
    registry = CollectorRegistry()
    reconciler = Reconciler(config.load({}), kube, NoStats(), Metrics(registry))  # type: ignore

    for _ in range(3):  # the handler, then two resyncs: one status write, one Event
        with pytest.raises(InvalidSpec):
            asyncio.run(reconciler.reconcile(body))

    (write,) = kube.applied
    assert write["subresource"] == "status"
    status = write["status"]
    assert status["phase"] == "Failed"
    (ready,) = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")
    assert "spec.interface.replicas" in ready["message"]
    assert [e["reason"] for e in kube.events] == ["InvalidSpec"]
    assert (
        registry.get_sample_value("channelworks_operator_reconcile_total", {"result": "invalid"})
        == 3
    )


async def test_the_scheduler_does_not_run_it_again_until_the_app_changes() -> None:
    scaling = {"minReplicas": 9, "maxReplicas": 2}
    body = samples.app_body(spec_fields={"worker": {"autoscaling": scaling}})
    kube = RecordingKube(body)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    now = [0.0]
    settings = config.load({})
    reconciler = Reconciler(settings, kube, NoStats(), metrics, clock=lambda: now[0])  # type: ignore
    loop = resync.Resync(settings, reconciler, metrics, clock=lambda: now[0])
    await loop.observe(None, body)
    for _ in range(3):  # an hour of ticks: one run only
        await asyncio.gather(*loop.start_due(asyncio.Semaphore(1)))
        now[0] += 1200
    assert len(kube.applied) == 1 and "minReplicas" in kube.events[0]["message"]
    runs = registry.get_sample_value("channelworks_operator_reconcile_total", {"result": "invalid"})
    assert runs == 1
