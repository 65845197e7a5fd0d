"""The pure rule behind MESSAGE_RATE / MESSAGE_BURST, on a clock the test moves."""

from __future__ import annotations

from channelworks_interface.pacing import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert abs(bucket.wait() - 0.1) < 1e-9
    clock.now += 0.1
    assert bucket.take() and not bucket.take()


def test_an_idle_socket_saves_up_one_burst_at_most() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    bucket.take()
    clock.now += 3600  # an hour of quiet is worth one burst, not 36,000 messages
    assert sum(bucket.take() for _ in range(10)) == 3


def test_rate_zero_means_no_limit() -> None:
    bucket = TokenBucket(rate=0, burst=1, clock=Clock())
    assert all(bucket.take() for _ in range(10_000))
    assert bucket.wait() == 0.0
