"""The interface autoscaler's decision (spec.interface.autoscaling), pure with an injected clock:
out at once on open connections, in only after the stabilization window, within min/max."""

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

    def poll(self, connections: int | None) -> autoscaler.Decision:
        decision = autoscaler.decide_interfaces(
            self.targets,
            current=self.current,
            connections=connections,
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
