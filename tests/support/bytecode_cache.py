"""pytest plugin: every Python process of a test run keeps its compiled bytecode in one cache.

Enabled in the top-level ``tests/conftest.py``. The suite starts hundreds of Python processes
(interface and worker processes, ``manage.py``, the ``channelworks`` command, pytest-xdist's
workers). Where ``PYTHONDONTWRITEBYTECODE`` is set (some CI images and sandboxes set it) and the
packages were installed without bytecode, each of them compiled every module it imported again:
about 1 s of CPU for Daphne, Twisted and Django alone, most of the suite's CPU time.

So the run writes bytecode, into ``build/pycache`` of the checkout (``PYTHONPYCACHEPREFIX``, kept
when already set), never beside the sources: the pytest process from here on, and every child
that inherits its environment (``tests.support.processes.clean_env`` keeps these variables).
``scripts/test.sh`` exports the same before pytest starts, so pytest's own imports are cached too.

What the run compiled under its temporary folders (the tests' venvs, copied projects) is of no use
to the next run, whose folders have other names: it is removed when the session ends (by the
xdist controller, whose temporary folder holds its workers').
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parents[2] / "build" / "pycache"


def use_bytecode_cache() -> str:
    """Turn the cache on for this process and its future children; return its folder."""
    prefix = os.environ.get("PYTHONPYCACHEPREFIX") or str(CACHE)
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False
    return prefix


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    use_bytecode_cache()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: its temporary folder is inside the controller's
    factory = getattr(session.config, "_tmp_path_factory", None)
    prefix = sys.pycache_prefix
    if factory is None or prefix is None:
        return
    base = factory.getbasetemp().resolve()
    shutil.rmtree(Path(prefix, *base.parts[1:]), ignore_errors=True)
