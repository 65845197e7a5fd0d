"""docs/examples.md's protocol table of the chat shows every kind of frame the chat sends, and
only those: alice and bob drive every command (and the refusals) against the chat example on real
interface and worker processes, and the fields of each frame they receive must be those of a
frame the table shows, and each frame the table shows must have come."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dataplane import clients, processes
from tests.support.redis_servers import RedisServer

PAGE = processes.REPO / "docs" / "examples.md"


def documented_frames() -> set[frozenset[str]]:
    """The field names of each server frame (after ``←``) of the table's block."""
    text = PAGE.read_text()
    block = text[text.index("opens\n**one** WebSocket") :]
    block = block[block.index("```\n") + 4 :]
    block = block[: block.index("```")]
    return {top_level_keys(line.split("← ", 1)[1]) for line in block.splitlines() if "← " in line}


def top_level_keys(shown: str) -> frozenset[str]:
    """The field names of the outermost object in ``shown`` (a frame as the table writes it,
    with ``...`` for values)."""
    keys, depth = [], 0
    for found in re.finditer(r'[{}\[\]]|"(\w+)":', shown):
        token = found.group(0)
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1:
            keys.append(found.group(1))
    return frozenset(keys)


def test_the_block_is_found_and_read() -> None:
    frames = documented_frames()
    assert frozenset({"hello", "staff", "rooms"}) in frames
    assert frozenset({"left"}) in frames


@pytest.fixture
def chat(
    redis_server: RedisServer, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[processes.Stack]:
    database = processes.prepare_database(processes.CHAT, tmp_path_factory.mktemp("chat-db"))
    redis_server.flushall()
    with processes.running_stack(
        processes.CHAT,
        database,
        redis_server.url,
        tmp_path / "stack",
        interfaces=1,
        workers=1,
        env={"CHANNELWORKS_REDIS_MODE": "standalone"},
    ) as stack:
        yield stack


class Recorder:
    """A chat socket that keeps the field names of every frame it received."""

    def __init__(self, socket: clients.JsonSocket, hello: dict[str, Any]) -> None:
        self.socket = socket
        self.seen = {frozenset(hello)}

    async def ask(self, command: Any, wanted: str) -> dict[str, Any]:
        await self.socket.connection.send(json.dumps(command))
        return await self.until(wanted)

    async def until(self, wanted: str) -> dict[str, Any]:
        """Frames up to the first with the field ``wanted``; that one."""
        frame, skipped = await self.socket.recv_until(lambda f: wanted in f)
        self.seen.update(frozenset(f) for f in [*skipped, frame])
        return dict(frame)


async def test_every_frame_the_chat_sends_is_in_the_table(chat: processes.Stack) -> None:
    interface = chat.interfaces[0]
    url = interface.ws_url("/chat/stream/")
    async with asyncio.timeout(120):
        alice = Recorder(
            *await clients.open_chat(url, await clients.login(interface.base_url, "alice"))
        )
        bob = Recorder(
            *await clients.open_chat(url, await clients.login(interface.base_url, "bob"))
        )
        await alice.ask({"command": "join", "room": "lobby"}, "joined")
        await bob.ask({"command": "join", "room": "lobby"}, "joined")
        await alice.until("event")  # bob joined, to the room
        await alice.ask({"command": "send", "room": "lobby", "message": "hi"}, "message")
        await bob.until("message")
        refusals = [
            {"command": "join", "room": "staff"},  # staff only
            {"command": "join", "room": "nowhere"},  # no such room
            {"command": "send", "room": "random", "message": "hi"},  # not joined
            {"command": "send", "room": "lobby", "message": " "},  # empty
            {"command": "send", "room": "lobby", "message": "x" * 2001},  # too long
            {"command": "shout"},  # unknown command
            ["not", "an", "object"],
        ]
        for refused in refusals:
            await bob.ask(refused, "error")
        await bob.ask({"command": "leave", "room": "lobby"}, "left")
        await alice.until("event")  # bob left, to the room
        await bob.ask({"command": "join", "room": "lobby"}, "joined")
        await alice.until("event")
        await bob.socket.close()
        await alice.until("event")  # bob's socket closed: left, to the room
        await alice.socket.close()

    documented = documented_frames()
    seen = alice.seen | bob.seen
    assert seen - documented == set(), "frames the chat sends that examples.md does not show"
    assert documented - seen == set(), "frames examples.md shows that the chat did not send"
