"""The interface autoscaler's decision (spec.interface.autoscaling), pure with an injected clock:
out at once on open connections or on CPU, in only after the stabilization window, within
min/max; modes keda and hpa leave the count to KEDA/the HPA and say so."""

from __future__ import annotations

from typing import Any

import pytest

from channelworks_operator import autoscaler, spec
from channelworks_operator.exceptions import InvalidSpec
from tests.operator import samples


def targets(**fields: Any) -> spec.InterfaceAutoscalingSpec:
    body = samples.app_body(spec_fields={"interface": {"autoscaling": {"enabled": True, **fields}}})
    return spec.parse(body).interface.autoscaling


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Interfaces:
    """Feeds the decision poll after poll as the operator does: history and count carried."""

    def __init__(self, t: spec.InterfaceAutoscalingSpec, clock: Clock, current: int) -> None:
        self.targets = t
        self.clock = clock
        self.current = current
        self.history: tuple[autoscaler.Recommendation, ...] = ()

    def poll(self, connections: int | None, cpu: float | None = None) -> autoscaler.Decision:
        load = None if connections is None else autoscaler.InterfaceLoad(connections, cpu)
        decision = autoscaler.decide_interfaces(
            self.targets,
            current=self.current,
            load=load,
            now=self.clock(),
            history=self.history,
        )
        self.history = decision.history
        self.current = decision.desired
        return decision


def test_defaults_are_off_and_safe() -> None:
    off = spec.parse(samples.app_body()).interface.autoscaling
    assert not off.enabled
    on = targets()
    assert (on.min_replicas, on.max_replicas, on.target_connections) == (2, 10, 1000)
    assert on.scale_down_stabilization_seconds == 300
    assert (on.mode, on.target_cpu_percent) == ("builtin", 70)


def test_scales_out_at_once_on_connections_over_the_target() -> None:
    pods = Interfaces(targets(targetConnectionsPerPod=100), Clock(), current=2)
    decision = pods.poll(450)
    assert (decision.desired, decision.reason) == (5, autoscaler.SCALED_UP)
    assert "450 open connections" in decision.message
    assert "2 -> 5 interface pods" in decision.message


def test_no_scale_in_before_the_window_then_in_to_the_window_highest() -> None:
    clock = Clock()
    t = targets(targetConnectionsPerPod=100, scaleDownStabilizationSeconds=60)
    pods = Interfaces(t, clock, current=2)
    assert pods.poll(800).desired == 8
    clock.now += 10
    assert pods.poll(100).reason == autoscaler.STABILIZING  # the sockets left: wait
    for _ in range(4):
        clock.now += 10
        decision = pods.poll(350)
        assert decision.desired == 8, "scaled in inside the window"
    assert "stays lower for 60s" in decision.message
    clock.now += 25  # the 800 is now 65 s old: the highest since is 350 -> 4
    decision = pods.poll(100)
    assert (decision.desired, decision.reason) == (4, autoscaler.SCALED_DOWN)
    clock.now += 61
    assert pods.poll(100).desired == 2  # down to the minimum, never below


def test_min_and_max_are_honoured() -> None:
    t = targets(
        minReplicas=3, maxReplicas=6, targetConnectionsPerPod=10, scaleDownStabilizationSeconds=0
    )
    clock = Clock()
    pods = Interfaces(t, clock, current=3)
    assert pods.poll(100_000).desired == 6
    clock.now += 1
    assert pods.poll(0).desired == 3
    assert Interfaces(t, Clock(), current=9).poll(0).desired == 3  # above max: back in bounds


def test_an_unreadable_count_keeps_the_pods() -> None:
    t = targets(minReplicas=2, maxReplicas=6)
    decision = Interfaces(t, Clock(), current=4).poll(None)
    assert (decision.desired, decision.reason) == (4, autoscaler.METRICS_UNAVAILABLE)
    assert Interfaces(t, Clock(), current=1).poll(None).desired == 2


def test_a_restart_does_not_scale_in_at_once() -> None:
    pods = Interfaces(targets(targetConnectionsPerPod=100), Clock(), current=7)
    assert pods.poll(0).desired == 7  # empty history: the current count counts as recommended


def test_min_over_max_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.interface\.autoscaling\.minReplicas"):
        targets(minReplicas=5, maxReplicas=3)


def test_scales_out_on_cpu_when_the_sockets_are_few_but_busy() -> None:
    """200 sockets want 1 pod by count, but the two processes burn 90% + 80% of a core: at 70%
    per pod that is ceil(170 / 70) = 3 pods, and the message says CPU drove it."""
    pods = Interfaces(targets(targetConnectionsPerPod=1000), Clock(), current=2)
    decision = pods.poll(200, cpu=170.0)
    assert (decision.desired, decision.reason) == (3, autoscaler.SCALED_UP)
    assert "170% CPU" in decision.message and "target of 70% per pod" in decision.message
    assert pods.poll(5000, cpu=170.0).desired == 5  # the count wins when it asks for more


def test_cpu_scale_in_waits_for_the_window_too() -> None:
    clock = Clock()
    pods = Interfaces(targets(scaleDownStabilizationSeconds=60), clock, current=2)
    assert pods.poll(10, cpu=400.0).desired == 6
    clock.now += 30
    assert pods.poll(10, cpu=20.0).reason == autoscaler.STABILIZING
    clock.now += 31
    assert pods.poll(10, cpu=20.0).desired == 2


def test_keda_and_hpa_modes_leave_the_count_and_say_on_what_they_scale() -> None:
    from channelworks_operator import scaling

    def app(mode: str, **extra: Any) -> spec.App:
        fields = {"enabled": True, "mode": mode, "targetCPUPercent": 60, **extra}
        return spec.parse(samples.app_body(spec_fields={"interface": {"autoscaling": fields}}))

    live = {"spec": {"replicas": 4}}
    hpa = scaling.decide_interfaces(app("hpa"), live, 10, now=0.0, history=())
    assert hpa.build_replicas is None and hpa.external and hpa.decision is None
    assert hpa.condition is not None and hpa.condition.reason == "HorizontalPodAutoscaler"
    assert "600m CPU per pod" in hpa.condition.message
    assert scaling.handovers([], hpa) == [live]  # the count is kept while the HPA takes over

    keda = app("keda", prometheus={"serverAddress": "http://prometheus:9090"})
    run = scaling.decide_interfaces(keda, live, 10, now=0.0, history=(), served={})
    assert run.build_replicas == 2 and not run.external  # KEDA missing: the least count
    assert run.condition is not None and run.condition.reason == "KedaNotInstalled"
    served = {scaling.KEDA: True}
    run = scaling.decide_interfaces(keda, live, 10, now=0.0, history=(), served=served)
    assert run.external and run.condition is not None
    assert "1000 open connections per pod (Prometheus)" in run.condition.message
    workers = scaling.conditions.true(scaling.conditions.AUTOSCALING, "Stable", "w")
    merged = scaling.with_interfaces(workers, run)
    assert merged.true and merged.message.startswith("w; interfaces: KEDA ScaledObject")


def test_every_mode_sets_how_often_the_layer_is_read() -> None:
    """keda and hpa read the operator's gauges, so they need the layer read as often as
    builtin does: the shortest pollIntervalSeconds of anything that autoscales."""
    from channelworks_operator import scaling

    def poll(**fields: Any) -> int | None:
        return scaling.poll_seconds(spec.parse(samples.app_body(spec_fields=fields)))

    keda = {"mode": "keda", "pollIntervalSeconds": 7, "prometheus": {"serverAddress": "http://p"}}
    assert poll(worker={"autoscaling": keda}) == 7
    assert poll(worker={"autoscaling": {"mode": "hpa", "pollIntervalSeconds": 9}}) == 9
    interfaces = {"autoscaling": {"enabled": True, "mode": "hpa", "pollIntervalSeconds": 4}}
    assert poll(worker={"autoscaling": {"pollIntervalSeconds": 30}}, interface=interfaces) == 4
    assert poll(worker={"autoscaling": {"enabled": False}}) is None


def _interfaces_decided(**interface: Any) -> str:
    from channelworks_operator import scaling

    body = samples.app_body(spec_fields={"interface": interface})
    app = spec.parse(body)
    served = {scaling.KEDA: True, scaling.EXTERNAL_METRICS_API: True}
    run = scaling.decide_interfaces(app, None, 100, now=0.0, history=(), served=served)
    if run.decision is not None:
        return run.decision.message
    assert run.condition is not None
    return run.condition.message


@pytest.mark.parametrize("mode", ["builtin", "keda", "hpa"])
def test_a_connection_target_over_what_a_pod_takes_is_explained(mode: str) -> None:
    scaling = {"enabled": True, "mode": mode, "targetConnectionsPerPod": 20_000}
    if mode == "keda":
        scaling["prometheus"] = {"serverAddress": "http://prometheus:9090"}
    message = _interfaces_decided(autoscaling=scaling)
    assert (
        "spec.interface.autoscaling.targetConnectionsPerPod 20000 cannot be used: an interface "
        "pod takes at most 10000 connections (CHANNELWORKS_INTERFACE_MAX_CONNECTIONS)"
    ) in message
    assert "allowed: up to 10000" in message


def test_a_raised_pod_limit_makes_the_connection_target_usable() -> None:
    env = [{"name": "CHANNELWORKS_INTERFACE_MAX_CONNECTIONS", "value": "50000"}]
    scaling = {"enabled": True, "targetConnectionsPerPod": 20_000}
    assert "cannot be used" not in _interfaces_decided(autoscaling=scaling, env=env)
    assert "cannot be used" not in _interfaces_decided(autoscaling={"enabled": True})


def test_the_operator_knows_the_interfaces_connection_limit() -> None:
    from channelworks_interface import config as interface_config

    assert spec.INTERFACE_MAX_CONNECTIONS == interface_config.DEFAULT_MAX_CONNECTIONS
