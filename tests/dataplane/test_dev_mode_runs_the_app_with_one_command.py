"""``channelworks dev``, ``manage.py runserver`` and scripts/run-chat.sh, as a developer runs them:
one command, a URL, WebSockets that work, code reload, and Ctrl-C/SIGTERM leaving nothing behind."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.dataplane import clients, devmode, processes
from tests.support.eventually import eventually_async


def ws(url: str, path: str) -> str:
    return url.replace("http://", "ws://").rstrip("/") + path


async def answer(url: str, text: str = "x") -> str:
    async with asyncio.timeout(20), connect(url) as socket:
        await socket.send(text)
        reply = await socket.recv()
        assert isinstance(reply, str)
        return reply


async def test_dev_serves_the_chat_example_and_stops_cleanly(chat_db: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(chat_db, state / processes.CHAT.database)
    port = processes.free_port()
    argv = devmode.channelworks_dev(processes.CHAT.folder, port, "--no-reload")
    with devmode.running(
        "dev", argv, tmp_path, processes.CHAT.folder, CHANNELWORKS_STATE_DIR=str(state)
    ) as dev:
        url = await asyncio.to_thread(dev.wait_for_url)
        assert url == f"http://127.0.0.1:{port}/"
        async with asyncio.timeout(60):
            alice, _ = await clients.open_chat(
                ws(url, "/chat/stream/"), await clients.login(url, "alice")
            )
            bob, _ = await clients.open_chat(
                ws(url, "/chat/stream/"), await clients.login(url, "bob")
            )
            await clients.join(alice, "lobby")
            await clients.join(bob, "lobby")
            await alice.send({"command": "send", "room": "lobby", "message": "dev mode works"})
            said, _ = await bob.recv_until(lambda frame: "message" in frame)
            await alice.close()
            await bob.close()
        assert said["user"] == "alice" and said["message"] == "dev mode works"
        assert len(dev.descendants()) == 1  # the in-memory layer: one process does it all
        assert await asyncio.to_thread(dev.stop_all, signal.SIGINT) == 0  # Ctrl-C
    assert "stopping" in dev.log()


async def test_a_code_change_restarts_the_in_memory_server(tmp_path: Path) -> None:
    project = devmode.write_project(tmp_path / "project")
    port = processes.free_port()
    with devmode.running("dev", devmode.channelworks_dev(project, port), tmp_path, project) as dev:
        url = await asyncio.to_thread(dev.wait_for_url)
        async with asyncio.timeout(90), connect(ws(url, "/echo/")) as socket:
            await socket.send("x")
            assert await socket.recv() == "v1:x"
            devmode.set_version(project, "v2")
            # The one process restarts: its sockets are closed with 1012 (service restart).
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        await asyncio.to_thread(dev.wait_for_url, 2)
        assert await answer(ws(url, "/echo/")) == "v2:x"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).text == "hello v2"  # HTTP through Django, reloaded
        assert await asyncio.to_thread(dev.stop_all) == 0
    assert "routing.py changed: restarting server" in dev.log()


async def test_with_the_local_layer_a_reload_keeps_sockets_and_others_reach_them(
    tmp_path: Path,
) -> None:
    project = devmode.write_project(tmp_path / "project")
    port = processes.free_port()
    app = f"devtest{secrets.token_hex(4)}"
    argv = devmode.channelworks_dev(
        project, port, "--layer", "local", "--workers", "2", "--app", app
    )
    with devmode.running("dev", argv, tmp_path, project) as dev:
        url = await asyncio.to_thread(dev.wait_for_url)
        assert len(dev.descendants()) >= 3  # an interface process and two workers
        async with asyncio.timeout(120), connect(ws(url, "/echo/")) as socket:
            await socket.send("x")
            assert await socket.recv() == "v1:x"
            # Another process of the project (a script, manage.py) reaches the socket's group.
            script = "from channelworks import Group; Group('everyone').send({'text': 'hi'})"
            env = processes.clean_env(
                DJANGO_SETTINGS_MODULE="echoproj.settings",
                CHANNELWORKS_REDIS_MODE="local",
                CHANNELWORKS_APP=app,
                PYTHONPATH=str(project),
            )
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", f"import django; django.setup(); {script}"],
                env=env,
                check=True,
                timeout=60,
            )
            assert await socket.recv() == "hi"
            # A code change restarts the workers only; the socket stays open and gets new code.
            devmode.set_version(project, "v2")
            await asyncio.to_thread(dev.wait_for_url, 2)

            async def new_code() -> None:
                await socket.send("y")
                assert await asyncio.wait_for(socket.recv(), 5) == "v2:y"

            await eventually_async(new_code, timeout=30, retry_on=(AssertionError, TimeoutError))
        assert await asyncio.to_thread(dev.stop_all) == 0
    assert "restarting worker 1, worker 2" in dev.log()


async def test_manage_py_runserver_serves_websockets_when_the_app_is_installed(
    tmp_path: Path,
) -> None:
    project = devmode.write_project(tmp_path / "project")
    port = processes.free_port()
    argv = devmode.runserver(port, "--noreload")
    with devmode.running("runserver", argv, tmp_path, project) as server:

        async def served() -> None:
            assert await answer(f"ws://127.0.0.1:{port}/echo/") == "v1:x"

        await eventually_async(
            served,
            timeout=devmode.START_SECONDS,
            interval=0.5,
            retry_on=(AssertionError, OSError, InvalidHandshake),
        )
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "hello v1"
        assert await asyncio.to_thread(server.stop_all) == 0
    log = server.log()
    assert "Starting Channelworks development server" in log
    assert f"http://127.0.0.1:{port}/" in log


async def test_manage_py_runserver_reloads_with_djangos_autoreloader(tmp_path: Path) -> None:
    project = devmode.write_project(tmp_path / "project")
    port = processes.free_port()
    with devmode.running("runserver", devmode.runserver(port), tmp_path, project) as server:

        async def serves(version: str) -> None:
            assert await answer(f"ws://127.0.0.1:{port}/echo/") == f"{version}:x"

        retry = (AssertionError, OSError, TimeoutError, InvalidHandshake)
        await eventually_async(lambda: serves("v1"), timeout=90, interval=0.5, retry_on=retry)
        devmode.set_version(project, "v2")
        await eventually_async(lambda: serves("v2"), timeout=90, interval=0.5, retry_on=retry)
        # Django's reloader runs the server in a child process: stop the whole group.
        await asyncio.to_thread(server.stop_all)


async def test_run_chat_script_is_the_one_command_to_start_the_chat(
    chat_db: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    port = processes.free_port()
    script = str(processes.REPO / "scripts" / "run-chat.sh")
    with devmode.running(
        "run-chat",
        ["bash", script, "--no-reload"],
        tmp_path,
        processes.REPO,
        PORT=str(port),
        CHANNELWORKS_STATE_DIR=str(state),
    ) as run:
        url = await asyncio.to_thread(run.wait_for_url, 1, 240)  # may run `uv sync` first
        assert url == f"http://127.0.0.1:{port}/"
        log = run.log()
        assert "alice / alice-chat" in log and "bob / bob-chat" in log  # the demo logins
        async with asyncio.timeout(60):
            chat, hello = await clients.open_chat(
                ws(url, "/chat/stream/"), await clients.login(url, "alice")
            )
            await chat.close()
        assert hello["hello"] == "alice"
        assert await asyncio.to_thread(run.stop_all, signal.SIGINT) == 0  # Ctrl-C
    assert (state / processes.CHAT.database).exists()
