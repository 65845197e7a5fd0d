"""Fixtures of the data-plane tests: example databases prepared once, logs of failing tests.

The tests start real processes (``channelworks-interface``, ``channelworks-worker``,
``channelworks dev``, ``manage.py``, Chromium) on the session's Redis Cluster; see processes.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from tests.dataplane import processes
from tests.support.redis_servers import RedisServer

ChatOnRedis = Callable[..., processes.Stack]


@pytest.fixture(scope="session")
def chat_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chat example's database, migrated and seeded (alice, bob, the rooms): copy it."""
    return processes.prepare_database(processes.CHAT, tmp_path_factory.mktemp("chat-db"))


@pytest.fixture(scope="session")
def liveblog_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The liveblog example's database, migrated and seeded (the 'launch' liveblog)."""
    return processes.prepare_database(processes.LIVEBLOG, tmp_path_factory.mktemp("liveblog-db"))


@pytest.fixture
def chat_on_redis(
    redis_server: RedisServer, chat_db: Path, tmp_path: Path
) -> Iterator[ChatOnRedis]:
    """``start(settings=None, **env)``: the chat example (one interface, one worker process) on
    the session's standalone redis-server, emptied first; stopped after the test."""
    with contextlib.ExitStack() as started:

        def start(settings: str | None = None, **env: str) -> processes.Stack:
            redis_server.flushall()
            options: dict[str, object] = {"settings": settings} if settings else {}
            return started.enter_context(
                processes.running_stack(
                    processes.CHAT,
                    chat_db,
                    redis_server.url,
                    tmp_path / "stack",
                    interfaces=1,
                    workers=1,
                    env={"CHANNELWORKS_REDIS_MODE": "standalone", **env},
                    **options,
                )
            )

        yield start


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for started in processes.ACTIVE:
            report.sections.append((f"logs of {started.title}", started.logs()))
    return report
