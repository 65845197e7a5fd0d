"""``deciding.decide`` is a pure function of what a run observed: hand-made observations in,
the counts, manifests, migration Job and hand-overs out; no API server, no layer, no clock."""

from __future__ import annotations

from typing import Any

from channelworks_operator import config, deciding, scaling, spec
from channelworks_operator.autoscaler import QueueSnapshot
from channelworks_operator.builders import meta
from tests.operator import samples

SETTINGS = config.load({})
KEDA = scaling.KEDA
OURS = "channelworks-operator"


def _world(body: dict[str, Any], **changes: Any) -> deciding.World:
    observed: dict[str, Any] = {
        "obj": body,
        "problems": (),
        "references_checked": True,
        "password": None,
        "ingress_hosts": (),
        "served": {},
        "redis_set": None,
        "cluster": None,
        "snapshot": QueueSnapshot(0, 0.0),
        "stats_error": None,
        "workers": {None: None},
    }
    return deciding.World(**{**observed, **changes})


def _deployment(name: str, replicas: int, manager: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "managedFields": [
                {
                    "manager": manager,
                    "operation": "Apply",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                }
            ],
        },
        "spec": {"replicas": replicas},
    }


def _decide(body: dict[str, Any], world: deciding.World) -> deciding.Decision:
    app = spec.parse(body)
    remembered = deciding.Remembered(histories={})
    return deciding.decide(app, world, remembered, SETTINGS, now=100.0, field_manager=OURS)


def test_a_deep_queue_decides_more_workers_and_builds_them() -> None:
    body = samples.app_body(spec_fields={"django": {"migrate": {"enabled": False}}})
    decision = _decide(body, _world(body, snapshot=QueueSnapshot(700, 2.0)))
    assert decision.scaling.desired == 7
    (worker,) = [
        m
        for m in decision.manifests
        if (m["kind"], m["metadata"]["name"]) == ("Deployment", "chat-worker")
    ]
    assert worker["spec"]["replicas"] == 7
    assert decision.histories[None], "the recommendation is remembered for the next run"
    assert decision.job is None and decision.handovers == []


def test_keda_takes_over_a_count_the_operator_wrote_and_it_is_kept_first() -> None:
    fields = {
        "worker": {
            "autoscaling": {
                "mode": "keda",
                "prometheus": {"serverAddress": "http://prometheus.monitoring:9090"},
            }
        },
        "django": {"migrate": {"enabled": False}},
    }
    body = samples.app_body(spec_fields=fields)
    live = _deployment("chat-worker", 6, OURS)
    decision = _decide(body, _world(body, served={KEDA: True}, workers={None: live}))
    assert decision.handovers == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "chat-worker", "namespace": "demo"},
            "spec": {"replicas": 6},
        }
    ]
    (worker,) = [
        m
        for m in decision.manifests
        if (m["kind"], m["metadata"]["name"]) == ("Deployment", "chat-worker")
    ]
    assert "replicas" not in worker["spec"], "KEDA owns the count"
    handed = _deployment("chat-worker", 6, scaling.HANDOVER_MANAGER)
    again = _decide(body, _world(body, served={KEDA: True}, workers={None: handed}))
    assert again.handovers == [], "handed over once"


def test_a_new_app_makes_its_migration_job_and_no_deployment_yet() -> None:
    body = samples.app_body()
    decision = _decide(body, _world(body, live={}))
    assert decision.job is not None and decision.job["kind"] == "Job"
    assert not decision.rollout.released
    rolled = [m for m in decision.manifests if m["kind"] == "Deployment"]
    assert rolled == [], "held: a Deployment that does not exist yet is not made"
    assert any(m["kind"] == "Service" for m in decision.manifests)
    assert meta.MIGRATE in str(decision.job["metadata"]["labels"])
