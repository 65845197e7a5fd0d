"""pytest plugin: a test run stopped with SIGTERM tears down as after Ctrl-C.

Python's default for SIGTERM ends the process at once: no ``finally`` block, fixture teardown or
``atexit`` handler runs. Everything a test had started then stays behind: the session's
redis-servers, and the processes tests start in sessions of their own (headless Chromium,
``channelworks dev``, interface and worker processes), which not even a signal to the run's
whole process group reaches. That is how a CI job that is cancelled, a timeout of the job, or a
``kill`` of a run leaves processes running for good.

Here the first SIGTERM raises :class:`Stopped` (a ``KeyboardInterrupt``) in the main thread: the
test in progress runs its ``finally`` blocks and context managers' exits, pytest tears down every
fixture and ends the session as interrupted (exit code 2), and the ``atexit`` handlers run. A
second SIGTERM ends the process at once, as before, for a teardown that does not end.

Under pytest-xdist the tests run in the worker processes, the controller's children, which a
SIGTERM to the controller alone does not reach (pytest-xdist then ends them without their
teardown): the controller passes the signal on to each of them, and each tears down its own.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType

import psutil  # type: ignore[import-untyped, unused-ignore]
import pytest

_config: pytest.Config | None = None


class Stopped(KeyboardInterrupt):
    """The run received SIGTERM."""


def _stop(number: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the run at once
    if _config is not None and _config.pluginmanager.has_plugin("dsession"):
        _pass_on_to_the_workers()
    raise Stopped("SIGTERM: stopping the test run; tearing down what the tests started")


def _pass_on_to_the_workers() -> None:
    """The xdist controller's children are its workers: SIGTERM each, so each tears down."""
    for worker in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.send_signal(signal.SIGTERM)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set there (and only run there)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # leave a handler someone else set
        global _config
        _config = config
        signal.signal(signal.SIGTERM, _stop)
