"""A token bucket: how many messages one socket may send now, and when it may send the next.

Pure (the clock is injected), so the rule is tested without waiting. A socket starts with
``burst`` tokens; each message takes one; tokens come back at ``rate`` per second, up to
``burst``. ``rate`` 0 turns the limit off.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
_EPSILON = 1e-9  # a token that is whole but for float rounding counts as whole


class TokenBucket:
    """``take()`` a token per message; ``wait()`` tells how long until the next one exists."""

    __slots__ = ("_burst", "_clock", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self._rate = rate
        self._burst = float(max(1, burst))
        self._clock = clock
        self._tokens = self._burst
        self._stamp = clock()

    @property
    def unlimited(self) -> bool:
        return self._rate <= 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def take(self) -> bool:
        """Use one token if there is one (always true when unlimited)."""
        if self._rate <= 0:
            return True
        self._refill()
        if self._tokens < 1.0 - _EPSILON:
            return False
        self._tokens = max(0.0, self._tokens - 1.0)
        return True

    def wait(self) -> float:
        """Seconds until ``take()`` can succeed (0 when it can now)."""
        if self._rate <= 0:
            return 0.0
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self._rate)
