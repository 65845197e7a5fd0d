"""The chat example on the production shape: two interface processes, two worker processes, the
six-node Redis Cluster; clients log in over HTTP and chat over WebSockets as a browser would."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.dataplane import clients, processes
from tests.support.redis_servers import RedisClusterNodes


@pytest.fixture(scope="module")
def stack(
    redis_cluster: RedisClusterNodes, chat_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[processes.Stack]:
    root = tmp_path_factory.mktemp("chat-stack")
    with processes.running_stack(
        processes.CHAT, chat_db, redis_cluster.url, root, interfaces=2, workers=2
    ) as running:
        yield running


async def test_a_message_said_through_one_interface_reaches_a_socket_on_the_other(
    stack: processes.Stack,
) -> None:
    one, other = stack.interfaces
    async with asyncio.timeout(60):
        alice_session = await clients.login(one.base_url, "alice")
        bob_session = await clients.login(other.base_url, "bob")
        alice, _ = await clients.open_chat(one.ws_url("/chat/stream/"), alice_session)
        bob, _ = await clients.open_chat(other.ws_url("/chat/stream/"), bob_session)
        await clients.join(alice, "lobby")
        await clients.join(bob, "lobby")
        await bob.send({"command": "send", "room": "lobby", "message": "hello from bob"})
        said, _ = await alice.recv_until(lambda frame: "message" in frame)
        echoed, _ = await bob.recv_until(lambda frame: "message" in frame)
        await alice.close()
        await bob.close()
    assert said["user"] == "bob" and said["message"] == "hello from bob"
    assert echoed == said


async def test_message_user_on_the_socket_is_who_logged_in_over_http(
    stack: processes.Stack,
) -> None:
    one, other = stack.interfaces
    async with asyncio.timeout(60):
        session = await clients.login(one.base_url, "bob")
        cookies = {"sessionid": session}
        async with httpx.AsyncClient(base_url=other.base_url, cookies=cookies) as client:
            page = await client.get("/")
        # The page (Django's view in a worker) and the socket (a consumer in a worker) both see
        # bob, whichever interface and worker the request and the handshake went through.
        assert page.status_code == 200 and '<b id="me">bob</b>' in page.text
        bob, hello = await clients.open_chat(other.ws_url("/chat/stream/"), session)
        await bob.close()
    assert hello["hello"] == "bob"
    assert hello["staff"] is False
    assert [room["slug"] for room in hello["rooms"]] == ["lobby", "random"]


async def test_a_socket_without_a_login_is_refused(stack: processes.Stack) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(30):
            await connect(stack.interfaces[0].ws_url("/chat/stream/"))
    assert refused.value.response.status_code == 403


async def test_staff_only_rooms_refuse_other_users_and_admit_staff(
    stack: processes.Stack,
) -> None:
    interface = stack.interfaces[0]
    async with asyncio.timeout(60):
        bob, _ = await clients.open_chat(
            interface.ws_url("/chat/stream/"), await clients.login(interface.base_url, "bob")
        )
        alice, hello = await clients.open_chat(
            interface.ws_url("/chat/stream/"), await clients.login(interface.base_url, "alice")
        )
        await bob.send({"command": "join", "room": "staff"})
        refused, _ = await bob.recv_until(lambda frame: "error" in frame or "joined" in frame)
        await bob.send({"command": "send", "room": "staff", "message": "let me in"})
        not_sent, _ = await bob.recv_until(lambda frame: "error" in frame or "message" in frame)
        joined = await clients.join(alice, "staff")
        await alice.close()
        await bob.close()
    assert refused == {"error": "this room is for staff only", "room": "staff"}
    assert not_sent["error"] == "this room is for staff only"
    assert "staff" in [room["slug"] for room in hello["rooms"]]
    assert joined["title"] == "Staff room"
    assert "let me in" not in [line["message"] for line in joined["history"]]
