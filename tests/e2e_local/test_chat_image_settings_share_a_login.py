"""The chat example's cluster recipe (examples/chat/k8s/) works on several worker pods: with
k8s_settings.py on a real PostgreSQL, after the migration Job's own command (read from
realtimeapp.yaml's django.migrate and run as the operator's Job runs it), a login made through
one interface is valid on a socket of the other, the socket is accepted (its channel session
lives in the shared database), whichever worker handles a frame knows the rooms it joined, and
what one user says reaches the other and stays in the room's history for every worker.

Real processes: PostgreSQL (Debian's, private, on 127.0.0.1), a standalone redis-server, two
``channelworks-interface`` and two ``channelworks-worker`` processes with the image's settings.
Before the fix (signed-cookie sessions, a sqlite copy per pod) every connect ended in 1013.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dataplane.clients import join, login, open_chat
from tests.dataplane.processes import CHAT, REPO, Stack
from tests.e2e_local import postgres_server
from tests.e2e_local.postgres_server import PostgresServer

K8S = REPO / "examples" / "chat" / "k8s"
TIMEOUT = 120.0

pytestmark = pytest.mark.skipif(
    not postgres_server.available(),
    reason="PostgreSQL is not installed (scripts/install-test-deps.sh installs Debian's)",
)


def _migrate_command() -> list[str]:
    """The command of the operator's migration Job: realtimeapp.yaml's django.migrate.command."""
    app = yaml.safe_load((K8S / "realtimeapp.yaml").read_text())
    command: list[str] = app["spec"]["django"]["migrate"]["command"]
    return command


def _settings_env(database: PostgresServer) -> dict[str, str]:
    """What a worker pod gets: the image's settings module and path, the Secret's variables."""
    return {
        **database.env,
        "DJANGO_SECRET_KEY": "test-secret-key",
        "DJANGO_DEBUG": "false",
        "PYTHONPATH": os.pathsep.join([str(K8S), str(CHAT.folder), str(REPO)]),
    }


@pytest.fixture
def database() -> Iterator[PostgresServer]:
    with PostgresServer(database="chat", user="chat", password=secrets.token_hex(8)) as server:
        yield server


@pytest.fixture
def stack(database: PostgresServer, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    env = {**os.environ, **_settings_env(database), "DJANGO_SETTINGS_MODULE": "k8s_settings"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    migrated = subprocess.run(
        _migrate_command(), cwd=CHAT.folder, env=env, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "alice / alice-chat" in migrated.stdout, migrated.stdout

    state = tmp_path / "state"
    state.mkdir()
    running = Stack(
        example=CHAT, redis_url=redis_url, log_dir=tmp_path, state_dir=state,
        settings="k8s_settings",
        extra_env={"CHANNELWORKS_REDIS_MODE": "standalone", **_settings_env(database)},
    )  # fmt: skip
    try:
        for _ in range(2):
            running.add_worker(wait=False)
            running.add_interface(wait=False)
        running.wait_ready()
        yield running
    except BaseException:
        print(running.logs())
        raise
    finally:
        running.stop()


def _message(text: str) -> Callable[[Any], bool]:
    def said(frame: Any) -> bool:
        return bool(frame.get("message") == text)

    return said


async def _chat_across_pods(stack: Stack) -> None:
    first, second = stack.interfaces
    alice_session = await login(first.base_url, "alice")
    bob_session = await login(second.base_url, "bob")

    # A login made through one interface (and whichever worker) opens a socket on the other.
    alice, hello = await open_chat(second.ws_url("/chat/stream/"), alice_session)
    assert hello["hello"] == "alice" and hello["staff"] is True
    bob, hello = await open_chat(first.ws_url("/chat/stream/"), bob_session)
    assert hello["hello"] == "bob" and hello["staff"] is False
    assert "staff" not in [room["slug"] for room in hello["rooms"]]
    try:
        await join(alice, "lobby")
        await join(bob, "lobby")
        # Every frame needs the rooms joined so far, from the channel session, on either worker.
        texts = [f"hello {index} {time.time_ns()}" for index in range(6)]
        for text in texts:
            await alice.send({"command": "send", "room": "lobby", "message": text})
        for text in texts:
            said, skipped = await bob.recv_until(_message(text))
            assert said["user"] == "alice", said
            assert not [frame for frame in skipped if "error" in frame], skipped
        await bob.send({"command": "join", "room": "staff"})
        refused, _ = await bob.recv_until(lambda frame: "error" in frame or "joined" in frame)
        assert refused == {"error": "this room is for staff only", "room": "staff"}
    finally:
        await alice.close()
        await bob.close()

    # The messages are in the one database: a new socket sees them in the room's history.
    late, _ = await open_chat(first.ws_url("/chat/stream/"), bob_session)
    try:
        joined = await join(late, "lobby")
        assert [m["message"] for m in joined["history"]][-len(texts) :] == texts
    finally:
        await late.close()


def test_a_login_and_a_channel_session_are_valid_on_every_worker(stack: Stack) -> None:
    asyncio.run(_chat_across_pods(stack))
    handled = stack.worker_metric(
        "channelworks_worker_messages_total", {"channel": "websocket.receive", "outcome": "ok"}
    )
    assert handled >= 9, f"the workers handled {handled} frames"
