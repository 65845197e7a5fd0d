"""The manual Redis password rotation of docs/operating.md ("Secrets, Redis passwords and TLS"),
run with real interface and worker processes on a real password-protected redis-server.

The operator sets a Redis password only when a pod starts, so a rotation is: add the new password
beside the old on Redis, start new processes with it (the rollout), stop the old ones, remove the
old password. This test does exactly that and checks what users would notice: sockets are
answered at every step, on the old processes until they stop and on the new ones from the start;
and a process started with the removed password (what a deleted Secret leads to) handles
nothing, and its /readyz turns 503 once the readiness grace is over.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

from tests.dataplane import processes
from tests.support.eventually import eventually_async
from tests.support.redis_servers import RedisServer

# The stale process's readiness grace (CHANNELWORKS_READINESS_GRACE_SECONDS, 15 s by default):
# shortened, so the test waits seconds for what it checks, not the default.
READINESS_GRACE_SECONDS = 3
READY_GIVE_UP_SECONDS = 60  # the readiness grace after the first failed check, and more
OLD = "old-password-of-the-app"
NEW = "new-password-of-the-app"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer(requirepass=OLD) as started:
        yield started


@pytest.fixture
def stack(server: RedisServer, chat_db: Path, tmp_path: Path) -> Iterator[processes.Stack]:
    with processes.running_stack(
        processes.CHAT,
        chat_db,
        f"redis://{server.host}:{server.port}/0",  # as in the pods: the password comes apart
        tmp_path,
        interfaces=1,
        workers=1,
        settings="tests.dataplane.testbed.settings",
        env={"CHANNELWORKS_REDIS_MODE": "standalone", "CHANNELWORKS_REDIS_PASSWORD": OLD},
    ) as running:
        yield running


async def _echoes(socket: ClientConnection, number: int) -> None:
    await socket.send(json.dumps({"n": number}))
    reply = json.loads(await socket.recv())
    assert reply["n"] == number, reply


def _redis(server: RedisServer, password: str) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, password=password)


async def test_old_and_new_processes_are_answered_through_a_rotation(
    stack: processes.Stack, server: RedisServer
) -> None:
    old_interface, old_worker = stack.interfaces[0], stack.workers[0]
    async with contextlib.AsyncExitStack() as sockets:
        on_old = await sockets.enter_async_context(connect(old_interface.ws_url("/echo/")))
        await _echoes(on_old, 1)

        # 1. The new password beside the old one (and for replicas, masterauth).
        with contextlib.closing(_redis(server, OLD)) as admin:
            admin.execute_command(  # type: ignore[no-untyped-call]
                "ACL", "SETUSER", "default", f">{NEW}"
            )
            admin.config_set("masterauth", NEW)
        await _echoes(on_old, 2)

        # 2-3. The Secret holds NEW: the rollout starts processes with it.
        stack.extra_env["CHANNELWORKS_REDIS_PASSWORD"] = NEW
        new_worker = stack.add_worker()
        new_interface = stack.add_interface()
        on_new = await sockets.enter_async_context(connect(new_interface.ws_url("/echo/")))
        await _echoes(on_new, 3)
        await _echoes(on_old, 4)

        # The old processes stop (the rollout is done).
        old_interface.stop()
        old_worker.stop()
        await _echoes(on_new, 5)

        # 4. The old password goes.
        with contextlib.closing(_redis(server, NEW)) as admin:
            admin.execute_command(  # type: ignore[no-untyped-call]
                "ACL", "SETUSER", "default", f"<{OLD}"
            )
        with (
            contextlib.closing(_redis(server, OLD)) as stale,
            pytest.raises(redis.AuthenticationError),
        ):
            stale.ping()
        await _echoes(on_new, 6)
        newcomer = await sockets.enter_async_context(connect(new_interface.ws_url("/echo/")))
        await _echoes(newcomer, 7)
    assert new_worker.alive and new_interface.alive

    # What a deleted Secret causes (docs/operating.md): a process started with a password Redis
    # no longer takes. /readyz turns 503 after the readiness grace (it may say 200 before) and the
    # log names the refused password.
    stack.extra_env["CHANNELWORKS_REDIS_PASSWORD"] = OLD
    stack.extra_env["CHANNELWORKS_READINESS_GRACE_SECONDS"] = str(READINESS_GRACE_SECONDS)
    stale_worker = stack.add_worker(wait=False)
    await eventually_async(
        lambda: stale_worker.probe("/readyz") == 503, timeout=READY_GIVE_UP_SECONDS, interval=1
    )
    assert "invalid username-password pair" in stale_worker.log()
