"""Fixtures of the data-plane tests: example databases prepared once, logs of failing tests.

The tests start real processes (``channelworks-interface``, ``channelworks-worker``,
``channelworks dev``, ``manage.py``, Chromium) on the session's Redis Cluster; see processes.py.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests.dataplane import processes


@pytest.fixture(scope="session")
def chat_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chat example's database, migrated and seeded (alice, bob, the rooms): copy it."""
    return processes.prepare_database(processes.CHAT, tmp_path_factory.mktemp("chat-db"))


@pytest.fixture(scope="session")
def liveblog_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The liveblog example's database, migrated and seeded (the 'launch' liveblog)."""
    return processes.prepare_database(processes.LIVEBLOG, tmp_path_factory.mktemp("liveblog-db"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for started in processes.ACTIVE:
            report.sections.append((f"logs of {started.title}", started.logs()))
    return report
