"""The built-in autoscaler's decision: out fast, in only after the stabilization window."""

from __future__ import annotations

from typing import Any

from channelworks_operator import autoscaler, spec
from tests.operator import samples


def targets(**fields: Any) -> spec.AutoscalingSpec:
    body = samples.app_body(spec_fields={"worker": {"autoscaling": fields}})
    return spec.parse(body).worker.autoscaling


def decide(t: spec.AutoscalingSpec, **kwargs: Any) -> autoscaler.Decision:
    kwargs.setdefault("oldest_age_seconds", 0.0)
    kwargs.setdefault("now", 1000.0)
    return autoscaler.decide(t, **kwargs)


def test_scales_out_at_once_to_depth_over_target() -> None:
    decision = decide(targets(targetQueueDepth=100, maxReplicas=20), current=2, depth=950)
    assert (decision.desired, decision.reason) == (10, autoscaler.SCALED_UP)
    assert "950" in decision.message


def test_never_goes_above_max_or_below_min() -> None:
    t = targets(minReplicas=2, maxReplicas=5, targetQueueDepth=10)
    assert decide(t, current=2, depth=10_000).desired == 5
    history = (autoscaler.Recommendation(0.0, 2),)
    assert decide(t, current=3, depth=0, now=10_000.0, history=history).desired == 2


def test_old_messages_scale_out_even_when_the_queue_is_short() -> None:
    t = targets(targetQueueDepth=100, targetOldestAgeSeconds=10, maxReplicas=20)
    decision = decide(t, current=3, depth=50, oldest_age_seconds=25.0)
    assert decision.reason == autoscaler.SCALED_UP
    assert 3 < decision.desired <= 6  # in proportion to the lag, at most double
    assert "waited" in decision.message


def test_a_waiting_message_wakes_workers_scaled_to_zero() -> None:
    t = targets(minReplicas=0, targetQueueDepth=100)
    assert decide(t, current=0, depth=1).desired == 1


def test_scales_in_only_after_the_stabilization_window() -> None:
    t = targets(minReplicas=1, targetQueueDepth=100, scaleDownStabilizationSeconds=120)
    busy = decide(t, current=1, depth=800, now=0.0)
    assert busy.desired == 8
    history = busy.history
    for now in (30.0, 60.0, 110.0):
        quiet = decide(t, current=8, depth=0, now=now, history=history)
        assert (quiet.desired, quiet.reason) == (8, autoscaler.STABILIZING)
        history = quiet.history
    later = decide(t, current=8, depth=0, now=125.0, history=history)
    assert (later.desired, later.reason) == (1, autoscaler.SCALED_DOWN)


def test_scales_in_to_the_highest_recommendation_of_the_window() -> None:
    t = targets(minReplicas=1, targetQueueDepth=100, scaleDownStabilizationSeconds=60)
    history = (autoscaler.Recommendation(0.0, 10), autoscaler.Recommendation(50.0, 4))
    decision = decide(t, current=10, depth=100, now=70.0, history=history)
    assert (decision.desired, decision.reason) == (4, autoscaler.SCALED_DOWN)


def test_a_fresh_start_does_not_scale_in_at_once() -> None:
    t = targets(minReplicas=1, scaleDownStabilizationSeconds=120)
    decision = decide(t, current=6, depth=0, now=0.0, history=())
    assert (decision.desired, decision.reason) == (6, autoscaler.STABILIZING)


def test_without_statistics_the_workers_stay_as_they_are() -> None:
    t = targets(minReplicas=1, maxReplicas=10)
    decision = decide(t, current=4, depth=None)
    assert (decision.desired, decision.reason) == (4, autoscaler.METRICS_UNAVAILABLE)
    assert decision.history == ()
    clamped = decide(t, current=14, depth=None)
    assert (clamped.desired, clamped.reason) == (10, autoscaler.OUT_OF_RANGE)


def test_a_lowered_maximum_takes_effect_at_once() -> None:
    t = targets(maxReplicas=3)
    history = (autoscaler.Recommendation(999.0, 8),)
    decision = decide(t, current=8, depth=10_000, history=history)
    assert decision.desired == 3


def test_steady_load_keeps_the_count() -> None:
    t = targets(targetQueueDepth=100)
    decision = decide(t, current=3, depth=300)
    assert (decision.desired, decision.reason) == (3, autoscaler.STABLE)


def test_history_is_bounded() -> None:
    t = targets(scaleDownStabilizationSeconds=3600)
    history: tuple[autoscaler.Recommendation, ...] = ()
    for step in range(autoscaler.MAX_HISTORY + 50):
        history = decide(t, current=1, depth=0, now=float(step), history=history).history
    assert len(history) == autoscaler.MAX_HISTORY
