"""``Group(...).send()`` from ``manage.py shell`` — a process of the project that is neither an
interface nor a worker — with the project's Channels 1 settings (an ``asgi_redis`` layer with no
prefix) reaches a socket held by the application's interface; settings that cannot reach the
application (another prefix, another Redis) make the shell fail with a message, not lose the
message without a word."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from websockets.asyncio.client import connect

from tests.dataplane import processes
from tests.dataplane.conftest import ChatOnRedis
from tests.support.redis_servers import RedisServer

SETTINGS = "tests.dataplane.bridgepage.ported_settings"
SEND = "from channelworks import Group; Group('watchers').send({'text': 'from the shell'})"


@pytest.fixture
def stack(chat_on_redis: ChatOnRedis, redis_server: RedisServer) -> processes.Stack:
    return chat_on_redis(SETTINGS, REDIS_URL=redis_server.url)


def shell(stack: processes.Stack, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py shell -c CODE`` with the environment of the application's pods."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=processes.CHAT.folder,
        env=stack.env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_group_send_from_the_shell_reaches_the_watching_socket(
    stack: processes.Stack,
) -> None:
    async with (
        asyncio.timeout(90),
        connect(stack.interfaces[0].ws_url("/watch/")) as socket,
    ):
        # The connect consumer has joined the group once a first send reaches the socket.
        while True:
            done = await asyncio.to_thread(shell, stack, SEND)
            assert done.returncode == 0, done.stdout + done.stderr
            try:
                frame = await asyncio.wait_for(socket.recv(), 10)
                break
            except TimeoutError:
                continue
    assert frame == "from the shell"


def test_a_shell_with_another_prefix_fails_and_says_why(stack: processes.Stack) -> None:
    done = shell(stack, SEND, LAYER_PREFIX="asgi")
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "'asgi'" in done.stderr and f"{stack.prefix!r} (CHANNELWORKS_APP)" in done.stderr


def test_a_shell_on_another_redis_database_fails_and_says_why(
    stack: processes.Stack, redis_server: RedisServer
) -> None:
    elsewhere = redis_server.url.rsplit("/", 1)[0] + "/5"  # reachable, but not the app's
    done = shell(stack, SEND, REDIS_URL=elsewhere)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "CHANNELWORKS_REDIS_URL" in done.stderr
