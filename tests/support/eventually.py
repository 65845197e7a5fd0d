"""Waiting for something to become true, instead of sleeping a guessed time.

``fn`` is either a predicate (retried until it returns something truthy) or a check made of
``assert`` statements (retried until it stops raising ``AssertionError``)::

    eventually(lambda: cluster.cluster_info(address)["cluster_state"] == "ok")
    await eventually_async(lambda: async_client.exists("key"))   # 0 retried, 1 passes

    def replica_promoted() -> None:
        assert len(cluster.masters()) == 3

    eventually(replica_promoted, timeout=30)

A call that returns ``None`` without raising counts as a passed check; any other falsy value
(``False``, ``0``, ``""``, ``[]``) is retried, so a predicate that may yield ``None`` while the
thing is not there yet must say so: ``lambda: d.get(k) is not None``. The first passing value is
returned. Exceptions other than those in ``retry_on`` (``AssertionError`` by default) propagate at
once. On timeout an ``AssertionError`` says what was waited for, how long, and the last failure.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast, overload

T = TypeVar("T")

RetryOn = tuple[type[BaseException], ...]


class _Attempts:
    """The deadline of one wait and the last reason it was not met yet."""

    def __init__(self, timeout: float, message: str | None, fn: Callable[..., object]) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.what = message or getattr(fn, "__qualname__", repr(fn))
        self.tries = 0
        self.last: str = "not called"
        self.error: BaseException | None = None

    def passed(self, result: object) -> bool:
        self.tries += 1
        if result is None or result:
            return True
        self.last, self.error = f"returned {result!r}", None
        return False

    def failed(self, error: BaseException) -> None:
        self.tries += 1
        self.last, self.error = f"{type(error).__name__}: {error}", error

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def timed_out(self) -> AssertionError:
        return AssertionError(
            f"{self.what}: still not true after {self.timeout:g}s "
            f"({self.tries} tries); last: {self.last}"
        )


def eventually(
    fn: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
    *,
    retry_on: RetryOn = (AssertionError,),
) -> T:
    """Call ``fn`` every ``interval`` seconds until it passes; return what it returned."""
    attempts = _Attempts(timeout, message, fn)
    while True:
        try:
            result = fn()
        except retry_on as error:
            attempts.failed(error)
        else:
            if attempts.passed(result):
                return result
        if attempts.remaining() <= 0:
            raise attempts.timed_out() from attempts.error
        time.sleep(min(interval, max(attempts.remaining(), 0.0)))


@overload
async def eventually_async(
    fn: Callable[[], Awaitable[T]],
    timeout: float = ...,
    interval: float = ...,
    message: str | None = ...,
    *,
    retry_on: RetryOn = ...,
) -> T: ...


@overload
async def eventually_async(
    fn: Callable[[], T],
    timeout: float = ...,
    interval: float = ...,
    message: str | None = ...,
    *,
    retry_on: RetryOn = ...,
) -> T: ...


async def eventually_async(
    fn: Callable[[], Awaitable[T]] | Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
    *,
    retry_on: RetryOn = (AssertionError,),
) -> T:
    """``eventually`` for async tests: ``fn`` may be a coroutine function or a plain one.

    Waits with ``asyncio.sleep``, so the event loop keeps running; an awaited call that is still
    running at the deadline is cancelled and counts as the last failure.
    """
    attempts = _Attempts(timeout, message, fn)
    while True:
        try:
            async with asyncio.timeout(max(attempts.remaining(), interval)) as deadline:
                result = fn()
                if inspect.isawaitable(result):
                    result = await result
        except retry_on as error:
            attempts.failed(error)
        except TimeoutError:
            if not deadline.expired():
                raise
            attempts.failed(TimeoutError("the call was still running at the deadline"))
        else:
            if attempts.passed(result):
                return cast(T, result)  # awaited above when it was awaitable
        if attempts.remaining() <= 0:
            raise attempts.timed_out() from attempts.error
        await asyncio.sleep(min(interval, max(attempts.remaining(), 0.0)))
