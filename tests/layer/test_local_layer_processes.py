"""LocalChannelLayer across real processes: messaging, groups, broker start-up, redelivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psutil
import pytest

from channelworks.layers import LocalChannelLayer

pytestmark = pytest.mark.timeout(90)

PRELUDE = """
import asyncio, json, os, sys, time
from channelworks.layers import LocalChannelLayer

PATH = sys.argv[1]
ARGS = sys.argv[2:]

def emit(**fields):
    print(json.dumps(fields), flush=True)

def layer():
    return LocalChannelLayer(path=PATH, broker_idle_timeout=5)
"""

ECHO = """
async def main():
    channels = layer()
    me = await channels.new_channel()
    emit(channel=me)
    while True:
        message = await channels.receive(me)
        if message.get("stop"):
            break
        await channels.send(message["reply_to"], {"echo": message["n"], "by": me})
    await channels.close()

asyncio.run(main())
"""

PINGER = """
async def main():
    channels = layer()
    me = await channels.new_channel()
    for n in range(5):
        await channels.send(ARGS[0], {"n": n, "reply_to": me})
        reply = await asyncio.wait_for(channels.receive(me), 10)
        emit(reply=reply)
    await channels.send(ARGS[0], {"stop": True})
    await channels.close()

asyncio.run(main())
"""

GROUP_MEMBER = """
async def main():
    channels = layer()
    me = await channels.new_channel()
    await channels.group_add("room", me)
    emit(ready=me)
    received = await channels.receive_many([me], timeout=15)
    emit(got=None if received is None else received[1])
    await channels.close()

asyncio.run(main())
"""

BROKER_PID_AT = """
async def main():
    start_at = float(ARGS[0])
    time.sleep(max(0.0, start_at - time.time()))
    channels = layer()
    info = await channels.broker_info()
    emit(pid=info["pid"])
    await channels.close()

asyncio.run(main())
"""

WORKER = """
async def main():
    channels = layer()
    ack = ARGS[0] == "ack"
    async with channels.work_receiver(["jobs"]) as receiver:
        emit(ready=True)
        while True:
            delivery = await receiver.get(timeout=30)
            if delivery is None:
                break
            emit(got=delivery.message)
            if ack:
                await delivery.ack()
                emit(acked=delivery.message)

asyncio.run(main())
"""


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _stop_broker(path: str) -> None:
    try:
        with open(path + ".pid") as pid_file:
            pid = int(pid_file.read())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def socket_path() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="cwl-", dir="/tmp")
    path = os.path.join(directory, "b.sock")
    yield path
    _stop_broker(path)
    shutil.rmtree(directory, ignore_errors=True)


class Children:
    """Child Python processes that print one JSON object per line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, script: str, *args: str) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            textwrap.dedent(PRELUDE) + textwrap.dedent(script),
            self.path,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.processes.append(process)
        return process

    @staticmethod
    async def event(process: asyncio.subprocess.Process, timeout: float = 15.0) -> dict[str, Any]:
        assert process.stdout is not None and process.stderr is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout)
        if not line:
            error = await process.stderr.read()
            raise AssertionError(f"child exited early: {error.decode()}")
        event: dict[str, Any] = json.loads(line)
        return event

    async def close(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
            await process.wait()


@pytest.fixture
async def children(socket_path: str) -> AsyncIterator[Children]:
    group = Children(socket_path)
    yield group
    await group.close()


def _brokers_for(path: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if (
            "channelworks.layers.local_broker" in cmdline
            and path in cmdline
            and process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process)
    return found


async def test_two_processes_exchange_messages_both_ways(children: Children) -> None:
    echo = await children.start(ECHO)
    echo_channel = (await children.event(echo))["channel"]
    assert echo_channel.startswith("specific.") and "!" in echo_channel
    pinger = await children.start(PINGER, echo_channel)
    replies = [(await children.event(pinger))["reply"] for _ in range(5)]
    assert [reply["echo"] for reply in replies] == [0, 1, 2, 3, 4]
    assert {reply["by"] for reply in replies} == {echo_channel}
    assert await asyncio.wait_for(pinger.wait(), 10) == 0
    assert await asyncio.wait_for(echo.wait(), 10) == 0


async def test_group_send_reaches_members_in_two_other_processes(
    children: Children, socket_path: str
) -> None:
    members = [await children.start(GROUP_MEMBER) for _ in range(2)]
    channels = [(await children.event(member))["ready"] for member in members]
    assert len(set(channels)) == 2
    layer = LocalChannelLayer(path=socket_path)
    await layer.group_send("room", {"type": "chat.message", "text": "hello"})
    for member in members:
        assert (await children.event(member))["got"] == {
            "type": "chat.message",
            "text": "hello",
        }
    await layer.close()


async def test_broker_starts_once_when_four_processes_start_together() -> None:
    directory = tempfile.mkdtemp(prefix="cwl-", dir="/tmp")
    try:
        for round_ in range(3):
            path = os.path.join(directory, f"r{round_}.sock")
            group = Children(path)
            try:
                start_at = str(time.time() + 1.0)
                started = [await group.start(BROKER_PID_AT, start_at) for _ in range(4)]
                pids = [(await group.event(process))["pid"] for process in started]
                assert len(set(pids)) == 1, f"several brokers answered: {pids}"
                brokers = _brokers_for(path)
                assert [broker.pid for broker in brokers] == pids[:1]
            finally:
                await group.close()
                _stop_broker(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def test_killed_worker_unacked_delivery_goes_to_another_worker_in_order(
    children: Children, socket_path: str
) -> None:
    layer = LocalChannelLayer(path=socket_path)
    await layer.send("jobs", {"reply_channel": "conn-1", "n": 1})
    await layer.send("jobs", {"reply_channel": "conn-1", "n": 2})

    first = await children.start(WORKER, "hold")
    assert (await children.event(first))["ready"]
    assert (await children.event(first))["got"] == {"reply_channel": "conn-1", "n": 1}

    second = await children.start(WORKER, "ack")
    assert (await children.event(second))["ready"]
    # conn-1's events belong to the first worker until it acks or dies: none may overtake.
    with pytest.raises(asyncio.TimeoutError):
        await children.event(second, timeout=1.0)

    first.send_signal(signal.SIGKILL)
    await first.wait()
    killed_at = time.monotonic()
    events = [await children.event(second, timeout=5) for _ in range(4)]
    assert events == [
        {"got": {"reply_channel": "conn-1", "n": 1}},
        {"acked": {"reply_channel": "conn-1", "n": 1}},
        {"got": {"reply_channel": "conn-1", "n": 2}},
        {"acked": {"reply_channel": "conn-1", "n": 2}},
    ]
    assert time.monotonic() - killed_at < 5
    stats = await layer.queue_stats()
    assert stats.total_depth == 0
    info = await layer.broker_info()
    assert info["unacked"] == 0
    await layer.close()


async def test_acked_work_is_not_redelivered_after_a_kill(
    children: Children, socket_path: str
) -> None:
    layer = LocalChannelLayer(path=socket_path)
    await layer.send("jobs", {"n": "once"})
    first = await children.start(WORKER, "ack")
    assert (await children.event(first))["ready"]
    assert (await children.event(first))["got"] == {"n": "once"}
    assert (await children.event(first))["acked"] == {"n": "once"}
    first.send_signal(signal.SIGKILL)
    await first.wait()
    second = await children.start(WORKER, "ack")
    assert (await children.event(second))["ready"]
    with pytest.raises(asyncio.TimeoutError):
        await children.event(second, timeout=1.5)
    await layer.close()
