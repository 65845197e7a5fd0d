"""A ``websocket.connect`` consumer that raises (here: a query on a table whose migration was
never applied, ``no such table``) closes the socket at once with 1011, and the traceback is in
the worker's log: with real interface and worker processes on a real redis-server, and in
``channelworks dev``. Before, the socket waited for the interface's connect timeout, then closed
with 1013 ("try again later"), which points at load rather than at the bug."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.dataplane import devmode, processes
from tests.support.eventually import eventually
from tests.support.redis_servers import RedisServer

# The interface waits this long for an answer to a connect: far longer than the test waits for
# the close, so a close that only comes when the interface gives up fails the test.
CONNECT_TIMEOUT = "120"
CLOSE_SECONDS = 30.0
ERROR = "no such table: missing_table"

ROUTING = """
from django.db import connection

from channelworks import route


def connect_to_missing_table(message):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM missing_table")
    message.reply_channel.send({"accept": True})


def accept(message):
    message.reply_channel.send({"accept": True})


def echo(message):
    message.reply_channel.send({"text": "echo:" + message["text"]})


channel_routing = [
    route("websocket.connect", connect_to_missing_table, path=r"^/broken/$"),
    route("websocket.connect", accept),
    route("websocket.receive", echo),
]
"""


def write_project(folder: Path) -> Path:
    """The dev-mode tests' echo project, with the routing above. Its settings name a layer only
    for dev's modes; worker and interface processes install theirs from the image contract's
    variables, so for Redis the settings keep the in-memory one."""
    devmode.write_project(folder)
    (folder / "echoproj" / "routing.py").write_text(textwrap.dedent(ROUTING))
    settings = folder / "echoproj" / "settings.py"
    text = settings.read_text()
    settings.write_text(text.replace("[_MODE]", '.get(_MODE, "InMemoryChannelLayer")'))
    return folder


async def close_code(url: str) -> int:
    """The code of the close that ends a socket opened on ``url`` (which sends nothing)."""
    async with asyncio.timeout(CLOSE_SECONDS), connect(url) as socket:
        try:
            await socket.recv()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code
    raise AssertionError("the socket stayed open")


async def echo(url: str) -> str:
    async with asyncio.timeout(CLOSE_SECONDS), connect(url) as socket:
        await socket.send("still here")
        return str(await socket.recv())


def traceback_in(log: str) -> bool:
    return "Traceback (most recent call last)" in log and ERROR in log


async def test_interface_and_worker_processes_close_1011_and_log_the_traceback(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "project")
    env = processes.clean_env(
        CHANNELWORKS_APP="broken-connect",
        CHANNELWORKS_REDIS_MODE="standalone",
        CHANNELWORKS_REDIS_URL=redis_server.url,
        CHANNELWORKS_LOG_FORMAT="text",
        CHANNELWORKS_DRAIN_SECONDS="2",
        CHANNELWORKS_INTERFACE_CONNECT_TIMEOUT=CONNECT_TIMEOUT,
        DJANGO_SETTINGS_MODULE="echoproj.settings",
        PYTHONPATH=str(project),
    )
    worker = processes.Worker("worker", env, tmp_path, project)
    interface = processes.Interface("interface", env, tmp_path)
    try:
        eventually(lambda: worker.ready() and interface.ready(), timeout=processes.READY_SECONDS)

        assert await close_code(interface.ws_url("/broken/")) == 1011
        # The worker carries on: the next socket is served.
        assert await echo(interface.ws_url("/fine/")) == "echo:still here"
        eventually(lambda: traceback_in(worker.log()), timeout=10, message="the traceback")
        assert "consumer failed on websocket.connect" in worker.log()
    except BaseException:
        print(f"----- worker -----\n{worker.log()}\n----- interface -----\n{interface.log()}")
        raise
    finally:
        interface.stop()
        worker.stop()


async def test_channelworks_dev_closes_1011_and_shows_the_traceback(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    port = processes.free_port()
    argv = devmode.channelworks_dev(project, port, "--no-reload")
    with devmode.running("dev", argv, tmp_path, project) as dev:
        url = await asyncio.to_thread(dev.wait_for_url)
        ws = url.replace("http://", "ws://").rstrip("/")

        assert await close_code(ws + "/broken/") == 1011
        assert await echo(ws + "/fine/") == "echo:still here"
        await asyncio.to_thread(
            eventually, lambda: traceback_in(dev.log()), timeout=10, message="the traceback"
        )
