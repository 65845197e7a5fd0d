"""Wrapping consumers, sync or ``async def``, with work before and after (sessions, auth).

The before/after steps are synchronous (they use Django's session and auth machinery, which may
touch the database); around an ``async def`` consumer they run via ``sync_to_async``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async

Before = Callable[[Any], None]
After = Callable[[Any, BaseException | None], None]


def is_async(func: Any) -> bool:
    """True for ``async def`` functions and objects whose ``__call__`` is ``async def``."""
    if iscoroutinefunction(func):
        return True
    if inspect.isclass(func) or not callable(func):
        return False
    return iscoroutinefunction(type(func).__call__)


def around(func: Callable[..., Any], before: Before, after: After) -> Callable[..., Any]:
    """``func`` with ``before(message)`` run first and ``after(message, error)`` run last."""
    if is_async(func):

        @functools.wraps(func)
        async def async_inner(message: Any, *args: Any, **kwargs: Any) -> Any:
            await sync_to_async(before)(message)
            error: BaseException | None = None
            try:
                return await func(message, *args, **kwargs)
            except BaseException as raised:
                error = raised
                raise
            finally:
                await sync_to_async(after)(message, error)

        return async_inner

    @functools.wraps(func)
    def inner(message: Any, *args: Any, **kwargs: Any) -> Any:
        before(message)
        error: BaseException | None = None
        try:
            return func(message, *args, **kwargs)
        except BaseException as raised:
            error = raised
            raise
        finally:
            after(message, error)

    return inner
