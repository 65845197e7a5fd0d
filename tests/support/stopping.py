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
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest


class Stopped(KeyboardInterrupt):
    """The run received SIGTERM."""


def _stop(number: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the run at once
    raise Stopped("SIGTERM: stopping the test run; tearing down what the tests started")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set there (and only run there)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # leave a handler someone else set
        signal.signal(signal.SIGTERM, _stop)
