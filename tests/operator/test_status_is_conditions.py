"""Status as conditions: reasons a person can act on, transition times that mean something."""

from __future__ import annotations

from typing import Any

from channelworks_operator import conditions, spec, status
from tests.operator import samples

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-01T00:05:00Z"


def deployment(replicas: int, ready: int, *, generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": replicas,
        },
    }


def observation(**overrides: Any) -> status.Observation:
    values: dict[str, Any] = {
        "interface": status.Workload.of(deployment(2, 2)),
        "worker": status.Workload.of(deployment(3, 3)),
        "desired_workers": 3,
        "layer": conditions.true(conditions.CHANNEL_LAYER_READY, "ClusterReady", "6 nodes"),
        "layer_nodes": 6,
        "layer_ready_nodes": 6,
        "layer_url": "redis://chat-redis.demo.svc:6379",
        "autoscaling": conditions.true(conditions.AUTOSCALING, "Stable", "3 workers"),
        "autoscaler": None,
        "queue_depth": 42,
        "oldest_age_seconds": 1.4,
        "migration": conditions.true(conditions.MIGRATED, "Migrated", "the migrations ran"),
    }
    values.update(overrides)
    return status.Observation(**values)


APP = spec.parse(samples.app_body(generation=3))


def by_type(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in result["conditions"]}


def test_a_running_app_is_ready_with_counts_depth_and_endpoint() -> None:
    result = status.build(APP, observation(), None, now=T0)
    assert result["phase"] == "Ready"
    assert result["observedGeneration"] == 3
    assert result["interface"] == {"replicas": 2, "readyReplicas": 2, "ready": "2/2"}
    assert result["worker"]["ready"] == "3/3"
    assert result["worker"]["selector"] == (
        "app.kubernetes.io/name=channelworks,app.kubernetes.io/instance=chat,"
        "app.kubernetes.io/component=worker"
    )
    assert result["queueDepth"] == 42
    assert result["endpoint"] == "chat-interface.demo.svc:8000"
    assert result["channelLayer"]["readyNodes"] == 6
    types = [c["type"] for c in result["conditions"]]
    assert types == list(conditions.ORDER)
    for item in result["conditions"]:
        assert set(item) == {
            "type",
            "status",
            "reason",
            "message",
            "observedGeneration",
            "lastTransitionTime",
        }
        assert item["observedGeneration"] == 3


def test_transition_time_is_kept_while_the_status_does_not_flip() -> None:
    first = status.build(APP, observation(), None, now=T0)
    busier = observation(queue_depth=500, worker=status.Workload.of(deployment(3, 2)))
    second = status.build(APP, busier, first, now=T1)
    assert by_type(second)["Ready"]["status"] == "False"
    assert by_type(second)["Ready"]["lastTransitionTime"] == T1
    assert by_type(second)["InterfaceAvailable"]["lastTransitionTime"] == T0


def test_a_missing_secret_is_a_reason_not_a_crash() -> None:
    problem = status.Problem("SecretNotFound", "Secret shared does not exist")
    result = status.build(APP, observation(problems=(problem,)), None, now=T0)
    ready = by_type(result)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert result["phase"] == "Degraded"


def test_nothing_up_yet_is_pending_and_a_rollout_is_progressing() -> None:
    nothing = observation(interface=None, worker=None)
    assert status.build(APP, nothing, None, now=T0)["phase"] == "Pending"
    rolling = deployment(2, 1, generation=2)
    rolling["status"]["observedGeneration"] = 1
    result = status.build(APP, observation(interface=status.Workload.of(rolling)), None, now=T0)
    assert result["phase"] == "Progressing"


def test_layer_not_ready_names_the_layer() -> None:
    layer = conditions.false(conditions.CHANNEL_LAYER_READY, "NodesNotReady", "2/6 Redis pods")
    result = status.build(APP, observation(layer=layer), None, now=T0)
    ready = by_type(result)["Ready"]
    assert ready["reason"] == "NodesNotReady"
    assert "ChannelLayerReady" in ready["message"]


def test_invalid_spec_keeps_the_rest_of_the_status() -> None:
    first = status.build(APP, observation(), None, now=T0)
    result = status.invalid(first, 4, "the spec cannot be honoured: x", now=T1)
    assert result["phase"] == "Failed"
    assert result["observedGeneration"] == 4
    assert by_type(result)["Ready"]["reason"] == "InvalidSpec"
    assert result["queueDepth"] == 42


def test_unchanged_status_is_recognised_so_no_write_happens() -> None:
    first = status.build(APP, observation(), None, now=T0)
    again = status.build(APP, observation(), first, now=T1)
    assert status.same(first, again)


def test_flipped_conditions_are_the_ones_worth_an_event() -> None:
    first = status.build(APP, observation(), None, now=T0)
    worse = status.build(
        APP, observation(worker=status.Workload.of(deployment(3, 1))), first, now=T1
    )
    flipped = {c["type"] for c in conditions.flipped(first["conditions"], worse["conditions"])}
    assert flipped == {"Ready", "WorkersAvailable"}
