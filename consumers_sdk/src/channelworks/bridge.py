"""How synchronous code reaches the (asynchronous) channel layer.

Channels 1 code is synchronous: ``Group("chat").add(...)`` in a consumer, ``Group("liveblog")
.send(...)`` in a model's ``save()``, a view, a management command or a process served by a plain
WSGI server. Every layer call is a coroutine, so a sync caller needs an event loop to run it on:

- in a worker's consumer thread, the worker's own loop (its "home" loop, bound with :func:`home`),
  so the layer's connections are the worker's;
- anywhere else (WSGI, management commands, tests, threads of your own), one process-wide
  background loop in a daemon thread, started on first use and restarted in a forked child.

A sync call from a thread that is itself running an event loop would block that loop, so it is
refused with :class:`~channelworks.exceptions.SyncCallInEventLoop`; await the ``a``-variant.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from channelworks import exceptions

T = TypeVar("T")

_home_loop: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "channelworks_home_loop", default=None
)


class _BackgroundLoop:
    """One event loop in a daemon thread, shared by every sync caller of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, started), name="channelworks-bridge", daemon=True
                )
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_forever()

    def forget(self) -> None:
        """After ``fork()`` the thread is gone in the child: start a new one on next use."""
        self._lock = threading.Lock()
        self._loop = None
        self._thread = None


_background = _BackgroundLoop()
os.register_at_fork(after_in_child=_background.forget)


def in_event_loop() -> bool:
    """True when the calling thread is running an event loop (sync layer calls would block it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class home:
    """Make ``loop`` the loop that sync layer calls in this context run on (worker threads).

    A class rather than a generator context manager: entered around every message a worker
    runs, where the generator's frame and wrapper cost a few µs."""

    __slots__ = ("_loop", "_token")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop

    def __enter__(self) -> None:
        self._token = _home_loop.set(self._loop)

    def __exit__(self, *exc_info: object) -> None:
        _home_loop.reset(self._token)


async def _await(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


def call(factory: Callable[[], Awaitable[T]], what: str = "this call") -> T:
    """Run the coroutine made by ``factory`` to completion from sync code and return its result.

    ``factory`` is called on the loop that runs it, so nothing is created when the call is refused.
    """
    if in_event_loop():
        raise exceptions.SyncCallInEventLoop(
            f"{what} is synchronous but was called from a thread running an event loop (async "
            "code); await the async variant instead, e.g. `await Group(name).asend(...)`"
        )
    loop = _home_loop.get()
    if loop is None or loop.is_closed() or not loop.is_running():
        loop = _background.get()
    return asyncio.run_coroutine_threadsafe(_await(factory), loop).result()
