"""Clients as a browser would be one: log in through Django's view, then talk over a WebSocket."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

DEMO_PASSWORDS = {"alice": "alice-chat", "bob": "bob-chat"}
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


async def login(base_url: str, username: str, password: str | None = None) -> str:
    """Log in with the login form (CSRF token and all); return the session cookie's value."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        page = await client.get("/accounts/login/")
        assert page.status_code == 200, page.text[:500]
        found = _CSRF_FIELD.search(page.text)
        assert found is not None, "no CSRF token in the login form"
        answer = await client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": password or DEMO_PASSWORDS[username],
                "csrfmiddlewaretoken": found.group(1),
                "next": "/",
            },
        )
        assert answer.status_code == 302, f"login failed: {answer.status_code} {answer.text[:500]}"
        session = client.cookies.get("sessionid")
        assert session, "no session cookie after logging in"
        return session


class JsonSocket:
    """A WebSocket speaking JSON frames, with bounded waits."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, content: Any) -> None:
        await self.connection.send(json.dumps(content))

    async def recv(self, timeout: float = 15.0) -> Any:
        frame = await asyncio.wait_for(self.connection.recv(), timeout)
        return json.loads(frame)

    async def recv_until(
        self, wanted: Callable[[Any], bool], timeout: float = 15.0
    ) -> tuple[Any, list[Any]]:
        """The first frame ``wanted`` accepts, and the frames skipped before it."""
        skipped: list[Any] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.connection.recv())
                if wanted(frame):
                    return frame, skipped
                skipped.append(frame)

    async def close(self) -> None:
        await self.connection.close()


async def open_chat(ws_url: str, session: str | None) -> tuple[JsonSocket, dict[str, Any]]:
    """Connect to the chat socket with the session cookie; return it and its hello frame."""
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    connection = await asyncio.wait_for(connect(ws_url, additional_headers=headers), 30)
    socket = JsonSocket(connection)
    hello = await socket.recv()
    assert "hello" in hello, hello
    return socket, hello


async def join(socket: JsonSocket, room: str) -> dict[str, Any]:
    await socket.send({"command": "join", "room": room})
    joined, _ = await socket.recv_until(lambda f: "joined" in f or "error" in f)
    assert joined.get("joined") == room, joined
    return dict(joined)
