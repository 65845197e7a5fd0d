"""LocalChannelLayer's API against a real broker process (started by the layer itself)."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psutil
import pytest
from asgiref.sync import async_to_sync

from channelworks.exceptions import (
    ChannelFull,
    ConfigurationError,
    InvalidChannelName,
    InvalidGroupName,
    LayerConnectionError,
    MessageNotEncodable,
    MessageTooLarge,
)
from channelworks.layers import LocalChannelLayer
from channelworks.layers.local_protocol import ERROR, pack_frame, read_frame

pytestmark = pytest.mark.timeout(60)


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


@pytest.fixture
async def layer(socket_path: str) -> AsyncIterator[LocalChannelLayer]:
    channel_layer = LocalChannelLayer(path=socket_path, broker_idle_timeout=10)
    yield channel_layer
    await channel_layer.close()


async def test_send_receive_and_process_specific_channels(layer: LocalChannelLayer) -> None:
    await layer.send("test.one", {"type": "x", "body": b"\x00bytes", "n": [1, 2.5, None]})
    assert await layer.receive("test.one") == {
        "type": "x",
        "body": b"\x00bytes",
        "n": [1, 2.5, None],
    }
    specific = await layer.new_channel()
    assert re.fullmatch(r"specific\.[0-9a-f]+![0-9a-f]+", specific)
    other = await layer.new_channel("reply.")
    assert other.startswith("reply.") and other.split("!")[0] == "reply." + specific[9:17]
    await layer.send(specific, {"to": "me"})
    assert await layer.receive(specific) == {"to": "me"}


async def test_receive_many_is_fair_across_channels(layer: LocalChannelLayer) -> None:
    for n in range(30):
        await layer.send("fair.a", {"n": n})
        await layer.send("fair.b", {"n": n})
    seen: Counter[str] = Counter()
    for _ in range(20):
        received = await layer.receive_many(["fair.a", "fair.b"], timeout=1)
        assert received is not None
        seen[received[0]] += 1
    assert seen["fair.a"] == seen["fair.b"] == 10

    # A flooded channel does not starve a quiet one, and order within a channel holds.
    await layer.flush()
    for n in range(50):
        await layer.send("flood", {"n": n})
    await layer.send("quiet", {"n": 0})
    first = [await layer.receive_many(["flood", "quiet"], timeout=1) for _ in range(3)]
    assert ("quiet", {"n": 0}) in first
    assert [m for c, m in filter(None, first) if c == "flood"] == [{"n": 0}, {"n": 1}]


async def test_receive_many_blocks_in_the_broker_until_a_message_comes(
    layer: LocalChannelLayer, socket_path: str
) -> None:
    waiting = asyncio.create_task(layer.receive_many(["w.a", "w.b", "w.c"]))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    sender = LocalChannelLayer(path=socket_path)
    started = time.monotonic()
    await sender.send("w.c", {"hello": 1})
    assert await asyncio.wait_for(waiting, 5) == ("w.c", {"hello": 1})
    assert time.monotonic() - started < 2  # woken by the send, not by a polling interval
    await sender.close()
    started = time.monotonic()
    assert await layer.receive_many(["w.a"], timeout=0.3) is None
    assert 0.25 < time.monotonic() - started < 3


async def test_cancelled_receives_lose_no_message(socket_path: str) -> None:
    layer = LocalChannelLayer(path=socket_path, capacity=1000, broker_idle_timeout=5)
    received: list[int] = []

    async def consume() -> None:
        while len(received) < 200:
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(layer.receive("cancel.me"), 0.001)
                received.append(message["n"])

    consumer = asyncio.create_task(consume())
    try:
        for n in range(200):
            await layer.send("cancel.me", {"n": n})
            if n % 7 == 0:
                await asyncio.sleep(0)
        await asyncio.wait_for(consumer, 30)
    finally:
        consumer.cancel()
    assert sorted(received) == list(range(200))
    assert await layer.receive_many(["cancel.me"], timeout=0) is None
    await layer.close()


async def test_channel_full(socket_path: str) -> None:
    layer = LocalChannelLayer(
        path=socket_path, capacity=3, channel_capacity={"small.*": 1}, broker_idle_timeout=5
    )
    for n in range(3):
        await layer.send("big", {"n": n})
    with pytest.raises(ChannelFull, match=r"channel 'big' is full: it holds its capacity of 3"):
        await layer.send("big", {"n": 3})
    await layer.send("small.one", {})
    with pytest.raises(ChannelFull, match="capacity of 1"):
        await layer.send("small.one", {})
    # Group sends skip full members instead of failing.
    await layer.group_add("everyone", "small.one")
    await layer.group_add("everyone", "small.two")
    await layer.group_send("everyone", {"g": 1})
    assert await layer.receive("small.two") == {"g": 1}
    assert await layer.receive("small.one") == {}
    assert await layer.receive_many(["small.one"], timeout=0) is None
    assert layer.channel_full_count == 3  # two refused sends, one skipped group member
    await layer.close()


async def test_message_and_group_expiry(socket_path: str) -> None:
    layer = LocalChannelLayer(path=socket_path, expiry=1, group_expiry=1, broker_idle_timeout=5)
    await layer.send("expiring", {"n": 1})
    await layer.group_add("brief", "member")
    assert (await layer.queue_stats()).total_depth == 1
    await asyncio.sleep(1.3)
    assert await layer.receive_many(["expiring"], timeout=0) is None
    assert (await layer.queue_stats()).total_depth == 0
    await layer.group_send("brief", {"late": True})
    assert await layer.receive_many(["member"], timeout=0.2) is None
    await layer.close()


async def test_errors_match_the_other_layers(socket_path: str) -> None:
    layer = LocalChannelLayer(path=socket_path, max_message_size=100, broker_idle_timeout=5)
    with pytest.raises(MessageTooLarge, match=r"limit \(max_message_size\) is 100"):
        await layer.send("big", {"x": "a" * 200})
    with pytest.raises(MessageTooLarge):
        await layer.group_send("group", {"x": "a" * 200})
    with pytest.raises(MessageNotEncodable, match="must be a dict"):
        await layer.send("chan", ["not", "a", "dict"])  # type: ignore[arg-type,unused-ignore]
    with pytest.raises(MessageNotEncodable, match="msgpack"):
        await layer.send("chan", {"x": {1, 2}})
    with pytest.raises(InvalidChannelName, match="invalid channel name"):
        await layer.send("bad name", {})
    with pytest.raises(InvalidChannelName):
        await layer.receive_many(["ok", "not ok"], timeout=0)
    with pytest.raises(InvalidGroupName):
        await layer.group_add("bad group!", "chan")
    with pytest.raises(TypeError, match="list of channel names"):
        await layer.receive_many("one.channel", timeout=0)
    with pytest.raises(ValueError, match="at least one channel"):
        await layer.receive_many([], timeout=0)
    await layer.close()


def test_configuration_errors_are_clear(socket_path: str) -> None:
    with pytest.raises(ConfigurationError, match="bytes long; Unix sockets allow at most"):
        LocalChannelLayer(path="/tmp/" + "x" * 200 + ".sock")
    with pytest.raises(ConfigurationError, match=r"unknown CONFIG keys \['hostz'\]"):
        LocalChannelLayer(path=socket_path, hostz=["redis://x"])
    with pytest.raises(ConfigurationError, match="broker_idle_timeout must be a number"):
        LocalChannelLayer(path=socket_path, broker_idle_timeout=-1)
    with pytest.raises(ConfigurationError, match="capacity must be a positive number"):
        LocalChannelLayer(path=socket_path, capacity=0)
    LocalChannelLayer(path=socket_path, hosts=[("localhost", 6379)])  # ignored, as in memory


async def test_no_broker_and_autostart_off(socket_path: str) -> None:
    layer = LocalChannelLayer(path=socket_path, autostart=False)
    with pytest.raises(LayerConnectionError) as raised:
        await layer.send("chan", {})
    message = str(raised.value)
    assert socket_path in message and "'autostart' is off" in message
    assert "python -m channelworks.layers.local_broker" in message
    assert isinstance(raised.value, ConnectionError)


async def test_a_path_that_is_not_a_socket_is_reported(socket_path: str) -> None:
    with open(socket_path, "w") as not_a_socket:
        not_a_socket.write("hello")
    layer = LocalChannelLayer(path=socket_path, connect_timeout=5)
    with pytest.raises(LayerConnectionError, match="exists and is not a socket"):
        await layer.send("chan", {})


async def test_stale_socket_file_is_replaced(socket_path: str) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(socket_path)
    stale.close()  # the file stays, nobody listens: what a crashed broker leaves
    layer = LocalChannelLayer(path=socket_path, broker_idle_timeout=5)
    await layer.send("after.crash", {"ok": True})
    assert await layer.receive("after.crash") == {"ok": True}
    await layer.close()


async def test_version_mismatch_is_refused_with_a_reason(layer: LocalChannelLayer) -> None:
    await layer.flush()  # the broker runs
    reader, writer = await asyncio.open_unix_connection(layer.path)
    writer.write(pack_frame([1, "hello", {"version": 999, "prefix": "asgi"}]))
    reply = await asyncio.wait_for(read_frame(reader), 5)
    assert reply[1] == ERROR
    assert "protocol version 1, this client version 999" in reply[2][1]
    writer.close()


async def test_broker_exits_after_idling(socket_path: str) -> None:
    layer = LocalChannelLayer(path=socket_path, broker_idle_timeout=1)
    pid = (await layer.broker_info())["pid"]
    assert os.path.exists(socket_path) and os.path.exists(socket_path + ".pid")
    await layer.close()
    deadline = time.monotonic() + 6
    while not _gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _gone(pid)
    assert not os.path.exists(socket_path) and not os.path.exists(socket_path + ".pid")
    # The next use starts a new broker.
    assert (await layer.broker_info())["pid"] != pid
    await layer.close()


async def test_broker_keeps_unexpired_messages_past_the_idle_timeout(socket_path: str) -> None:
    sender = LocalChannelLayer(path=socket_path, broker_idle_timeout=0.5, expiry=3)
    pid = (await sender.broker_info())["pid"]
    await sender.send("later", {"kept": True})
    await sender.close()
    await asyncio.sleep(1.6)  # no client for longer than the idle timeout
    assert not _gone(pid)
    receiver = LocalChannelLayer(path=socket_path, broker_idle_timeout=0.5)
    assert await receiver.receive_many(["later"], timeout=1) == ("later", {"kept": True})
    assert (await receiver.broker_info())["pid"] == pid
    await receiver.close()


async def test_groups_flush_and_queue_stats(layer: LocalChannelLayer) -> None:
    one, two = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", one)
    await layer.group_add("room", two)
    await layer.group_add("room", "normal.member")
    await layer.group_discard("room", two)
    await layer.group_send("room", {"text": "hi"})
    assert await layer.receive(one) == {"text": "hi"}
    assert await layer.receive_many([two], timeout=0) is None
    for _ in range(3):
        await layer.send("stats.q", {})
    await layer.send(two, {})
    stats = await layer.queue_stats()
    assert {name: s.depth for name, s in stats.channels.items()} == {
        "stats.q": 3,
        "normal.member": 1,
    }
    assert stats.total_depth == 4 and 0 <= stats.oldest_age_seconds < 5
    await layer.flush()
    assert (await layer.queue_stats()).total_depth == 0
    await layer.group_send("room", {"text": "gone"})
    assert await layer.receive_many([one], timeout=0) is None


async def test_prefixes_are_separate_namespaces(socket_path: str) -> None:
    first = LocalChannelLayer(path=socket_path, prefix="app.one", broker_idle_timeout=5)
    second = LocalChannelLayer(path=socket_path, prefix="app.two", broker_idle_timeout=5)
    await first.send("shared.name", {"from": "one"})
    assert await second.receive_many(["shared.name"], timeout=0.2) is None
    assert await first.receive("shared.name") == {"from": "one"}
    await first.close()
    await second.close()


async def test_work_receiver_orders_per_connection_and_acks(
    layer: LocalChannelLayer, socket_path: str
) -> None:
    other_layer = LocalChannelLayer(path=socket_path)
    for n in range(3):
        await layer.send("work.in", {"reply_channel": "conn.a", "n": n})
    await layer.send("work.in", {"reply_channel": "conn.b", "n": 0})
    first = layer.work_receiver(["work.in"])
    second = other_layer.work_receiver(["work.in"])
    a0 = await first.get(timeout=2)
    assert a0 is not None and a0.message == {"reply_channel": "conn.a", "n": 0}
    # conn.a's next events wait for the ack; other connections run in parallel.
    b0 = await second.get(timeout=2)
    assert b0 is not None and b0.message == {"reply_channel": "conn.b", "n": 0}
    assert await second.get(timeout=0.3) is None
    assert await first.get(timeout=0.3) is None
    await a0.ack()
    a1 = await first.get(timeout=2)
    assert a1 is not None and a1.message["n"] == 1
    await a1.ack()
    await b0.ack()
    await first.stop()  # what it took but did not hand out goes back at once
    a2 = await second.get(timeout=2)
    assert a2 is not None and a2.message == {"reply_channel": "conn.a", "n": 2}
    await a2.ack()
    await second.stop()
    assert (await layer.broker_info())["unacked"] == 0
    await other_layer.close()


async def test_closing_a_connection_returns_unacked_work(socket_path: str) -> None:
    worker = LocalChannelLayer(path=socket_path, broker_idle_timeout=5)
    await worker.send("jobs", {"n": 1})
    receiver = worker.work_receiver(["jobs"])
    taken = await receiver.get(timeout=2)
    assert taken is not None
    await worker.close()  # like a process exit: the broker queues the message again
    other = LocalChannelLayer(path=socket_path, broker_idle_timeout=5)
    async with other.work_receiver(["jobs"]) as again:
        delivery = await again.get(timeout=2)
        assert delivery is not None and delivery.message == {"n": 1}
        await delivery.ack()
    await other.close()


def test_sync_callers_through_async_to_sync(socket_path: str) -> None:
    layer = LocalChannelLayer(path=socket_path, broker_idle_timeout=5)
    errors: list[BaseException] = []

    def sync_sender(start: int) -> None:
        try:
            for n in range(start, start + 10):
                async_to_sync(layer.send)("from.sync", {"n": n})
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=sync_sender, args=(k * 10,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    got = set()
    for _ in range(30):
        received = async_to_sync(layer.receive_many)(["from.sync"], 2)
        assert received is not None
        got.add(received[1]["n"])
    assert got == set(range(30))
    # Every short-lived loop closed its connection when it closed.
    info = async_to_sync(layer.broker_info)()
    assert info["connections"] == 1


async def test_a_dead_broker_is_reported_and_replaced(socket_path: str) -> None:
    layer = LocalChannelLayer(path=socket_path, broker_idle_timeout=5)
    pid = (await layer.broker_info())["pid"]
    waiting = asyncio.create_task(layer.receive("never"))
    receiver = layer.work_receiver(["jobs"])
    getting = asyncio.create_task(receiver.get(timeout=10))
    await asyncio.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(LayerConnectionError, match="lost the connection to the local channel"):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(LayerConnectionError, match=socket_path):
        await asyncio.wait_for(getting, 5)
    # The next call starts a new broker (the old one's messages are gone).
    await layer.send("again", {"n": 1})
    assert (await layer.broker_info())["pid"] != pid
    assert await layer.receive("again") == {"n": 1}
    await receiver.stop()
    await layer.close()


async def test_a_broker_run_by_hand(socket_path: str) -> None:
    command = [
        sys.executable,
        "-m",
        "channelworks.layers.local_broker",
        "--socket",
        socket_path,
        "--idle-timeout",
        "0",
    ]
    broker = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.PIPE)
    try:
        assert broker.stderr is not None
        line = await asyncio.wait_for(broker.stderr.readline(), 10)
        assert b"listening on " + socket_path.encode() in line
        assert oct(os.stat(socket_path).st_mode & 0o777) == "0o600"
        layer = LocalChannelLayer(path=socket_path, autostart=False)
        assert (await layer.broker_info())["pid"] == broker.pid
        await layer.send("by.hand", {"ok": 1})
        assert await layer.receive("by.hand") == {"ok": 1}
        await layer.close()
        second = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.PIPE)
        _, error = await asyncio.wait_for(second.communicate(), 10)
        assert second.returncode == 1 and b"a broker already listens on" in error
        broker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(broker.wait(), 10) == 0
        assert not os.path.exists(socket_path)
    finally:
        if broker.returncode is None:
            broker.kill()
            await broker.wait()


def _forked_child(layer: LocalChannelLayer, parent_channel: str, results: Any) -> None:
    child_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.send)("from.child", {"channel": child_channel})
    results.put(child_channel)


def test_a_forked_process_gets_its_own_connection_and_name(socket_path: str) -> None:
    layer = LocalChannelLayer(path=socket_path, broker_idle_timeout=5)
    parent_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.send)("warm.up", {})  # the parent holds a connection now
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_forked_child, args=(layer, parent_channel, results))
    child.start()
    child.join(20)
    assert child.exitcode == 0
    child_channel = results.get(timeout=5)
    assert child_channel.split("!")[0] != parent_channel.split("!")[0]
    received = async_to_sync(layer.receive_many)(["from.child"], 5)
    assert received == ("from.child", {"channel": child_channel})
