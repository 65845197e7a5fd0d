"""One socket sends 1,000 numbered chat messages as fast as it can while four worker processes
run: every message is handled once, in the order sent (docs/worker.md, "Ordering and parallelism").

It runs with the limits raised to take the whole burst (``capacity``, and the interface's
per-socket message rate), and with the default settings. With the defaults, the socket outruns
what they allow: the interface closes it with 1008 (over its message rate) or 1013 (its shard's
queue is full at ``capacity``, 100), as docs/interface.md says. The messages handled are then
exactly the first ones sent, in order, each once: none after a refused one, no gap. And at the
defaults a socket that sends at a pace its worker keeps up with has every message handled, in
order.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.dataplane import clients, processes
from tests.support.redis_servers import RedisClusterNodes

MESSAGES = 1000
PACED = 150
# Well under the interface's default message rate (50/s) and what one connection's worker handles
# (about 25 messages/s of this chat consumer here, one at a time).
PACED_PER_SECOND = 10
# Each test its own room: what a failed burst left queued cannot land among the paced messages.
BURST_ROOM = "random"
PACED_ROOM = "lobby"
pytestmark = pytest.mark.timeout(600)  # 1,000 messages one at a time, on a two-core machine


@pytest.fixture(scope="module", params=["default-settings", "raised-limits"])
def stack(
    request: pytest.FixtureRequest,
    redis_cluster: RedisClusterNodes,
    chat_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[processes.Stack]:
    root = tmp_path_factory.mktemp("ordering-stack")
    limits = {}
    if request.param == "raised-limits":
        # The socket sends faster than one connection's messages are handled (one at a time), so
        # the queue grows: room for all of them, as a deployment expecting such bursts would.
        limits = {
            "CHANNELWORKS_LAYER_CAPACITY": str(MESSAGES * 2),
            "CHANNELWORKS_INTERFACE_MESSAGE_BURST": str(MESSAGES * 2),
            "CHANNELWORKS_INTERFACE_MESSAGE_RATE": str(MESSAGES * 10),
        }
    with processes.running_stack(
        processes.CHAT, chat_db, redis_cluster.url, root, interfaces=1, workers=4, env=limits
    ) as running:
        yield running


async def test_a_thousand_messages_of_one_socket_are_handled_in_order(
    stack: processes.Stack,
) -> None:
    interface = stack.interfaces[0]
    last_id_before = _stored_in(stack, BURST_ROOM)[0]
    before = stack.worker_metric(
        "channelworks_worker_messages_total", {"channel": "websocket.receive"}
    )
    async with asyncio.timeout(240):
        alice, _ = await clients.open_chat(
            interface.ws_url("/chat/stream/"), await clients.login(interface.base_url, "alice")
        )
        await clients.join(alice, BURST_ROOM)
        started = time.monotonic()
        closed: int | None = None
        said: list[dict[str, object]] = []
        try:
            for number in range(MESSAGES):
                await alice.send({"command": "send", "room": BURST_ROOM, "message": str(number)})
            while len(said) < MESSAGES:
                frame = await alice.recv(timeout=60)
                if "message" in frame:
                    said.append(frame)
        except ConnectionClosed as error:
            closed = error.rcvd.code if error.rcvd is not None else None
            said.extend(
                frame for frame in await _frames_before_the_close(alice) if "message" in frame
            )
        elapsed = time.monotonic() - started
        await alice.close()
    numbers = [int(str(frame["message"])) for frame in said]
    ids = [int(str(frame["id"])) for frame in said]
    print(
        f"{len(numbers)} of {MESSAGES} messages of one socket handled in order in {elapsed:.1f}s"
        f" (capacity {stack.env().get('CHANNELWORKS_LAYER_CAPACITY', 'default')}; closed with "
        f"{closed})"
    )
    assert numbers == list(range(len(numbers))), "the messages came back out of order or not once"
    assert ids == sorted(ids), "the messages were stored out of order"
    if "CHANNELWORKS_LAYER_CAPACITY" in stack.env():
        assert closed is None and len(numbers) == MESSAGES
    else:
        assert closed in (1008, 1013) or (closed is None and len(numbers) == MESSAGES), closed
    after = stack.worker_metric(
        "channelworks_worker_messages_total", {"channel": "websocket.receive"}
    )
    assert after - before >= len(numbers) + 1  # the join and the sends, across the workers
    # What the workers stored (also after the socket closed): the first messages sent, in order.
    stored = await _stored_when_quiet(stack, BURST_ROOM, last_id_before)
    print(f"stored: {len(stored)} messages")
    assert stored == [str(n) for n in range(len(stored))], "stored out of order, twice or a gap"
    assert len(stored) >= len(numbers)


@pytest.mark.parametrize("stack", ["default-settings"], indirect=True)
async def test_at_the_defaults_a_socket_at_a_steady_pace_has_every_message_handled_in_order(
    stack: processes.Stack,
) -> None:
    interface = stack.interfaces[0]
    last_id_before = _stored_in(stack, PACED_ROOM)[0]
    async with asyncio.timeout(180):
        alice, _ = await clients.open_chat(
            interface.ws_url("/chat/stream/"), await clients.login(interface.base_url, "alice")
        )
        await clients.join(alice, PACED_ROOM)
        said: list[dict[str, object]] = []

        async def read() -> None:
            while len(said) < PACED:
                frame = await alice.recv(timeout=60)
                if "message" in frame:
                    said.append(frame)

        reading = asyncio.create_task(read())
        for number in range(PACED):
            await alice.send({"command": "send", "room": PACED_ROOM, "message": str(number)})
            await asyncio.sleep(1 / PACED_PER_SECOND)
        await reading
        await alice.close()
    assert [int(str(frame["message"])) for frame in said] == list(range(PACED))
    assert await _stored_when_quiet(stack, PACED_ROOM, last_id_before) == [
        str(n) for n in range(PACED)
    ]


def _stored_in(stack: processes.Stack, room: str, after_id: int = 0) -> tuple[int, list[str]]:
    """The newest message id, and the texts stored in ``room`` after ``after_id``."""
    with contextlib.closing(sqlite3.connect(stack.state_dir / processes.CHAT.database)) as db:
        rows = db.execute(
            "SELECT m.id, m.text FROM rooms_message m JOIN rooms_room r ON m.room_id = r.id"
            " WHERE r.slug = ? AND m.id > ? ORDER BY m.id",
            (room, after_id),
        ).fetchall()
        newest = db.execute("SELECT COALESCE(MAX(id), 0) FROM rooms_message").fetchone()[0]
    return int(newest), [str(text) for _, text in rows]


async def _stored_when_quiet(stack: processes.Stack, room: str, after_id: int) -> list[str]:
    """The texts stored in ``room`` after ``after_id``, once nothing more is stored for 3 s."""
    previous: list[str] | None = None
    while True:
        _, stored = await asyncio.to_thread(_stored_in, stack, room, after_id)
        if stored == previous:
            return stored
        previous = stored
        await asyncio.sleep(3)


async def _frames_before_the_close(socket: clients.JsonSocket) -> list[dict[str, object]]:
    """The frames the server sent before it closed the socket and the client has not read yet."""
    frames = []
    while True:
        try:
            frames.append(await socket.recv(timeout=5))
        except (ConnectionClosed, TimeoutError):
            return frames
