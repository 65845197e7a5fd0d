"""A socket's channel session holds its user (the chat keeps it from the handshake's cookie), but
it is no login cookie: its key, presented as the session cookie of an HTTP request, logs nobody
in, and it is deleted when the socket closes. Real interface and worker processes; the key is
read where it is stored (the project's database), as anyone who could derive it would have it."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import pytest

from tests.dataplane import clients, processes
from tests.dataplane.conftest import ChatOnRedis
from tests.support.eventually import eventually


@pytest.fixture
def stack(chat_on_redis: ChatOnRedis) -> processes.Stack:
    return chat_on_redis()


def channel_session_keys(stack: processes.Stack) -> list[str]:
    """The keys of the channel sessions in the chat's session table."""
    with sqlite3.connect(stack.state_dir / processes.CHAT.database, timeout=20) as database:
        rows = database.execute(
            "SELECT session_key FROM django_session WHERE session_key LIKE 'chn%'"
        ).fetchall()
    return [row[0] for row in rows]


async def test_a_channel_session_key_does_not_log_in_over_http_and_dies_with_its_socket(
    stack: processes.Stack,
) -> None:
    interface = stack.interfaces[0]
    async with asyncio.timeout(120):
        session = await clients.login(interface.base_url, "alice")
        socket, hello = await clients.open_chat(interface.ws_url("/chat/stream/"), session)
        assert hello["hello"] == "alice"
        keys = await asyncio.to_thread(eventually, lambda: channel_session_keys(stack), 30)
        assert len(keys) == 1

        async with httpx.AsyncClient(base_url=interface.base_url, timeout=30) as browser:
            logged_in = await browser.get("/", headers={"Cookie": f"sessionid={session}"})
            assert logged_in.status_code == 200  # the real login cookie works
            stolen = await browser.get("/", headers={"Cookie": f"sessionid={keys[0]}"})
        assert stolen.status_code == 302  # to the login form: the channel session is nobody
        assert "/accounts/login/" in stolen.headers["location"]

        await socket.close()
        await asyncio.to_thread(
            eventually, lambda: channel_session_keys(stack) == [], 30, 0.2, "sessions deleted"
        )
