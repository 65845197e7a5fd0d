"""Recovery after reconnect, with real processes: two interface processes and a worker on a real
Redis, a client speaking the shipped JS client's protocol (tests/support/stream_client.py)
reaching the interfaces through a TCP proxy that the test cuts, as a network drop would.

- the messages sent to a group with history while the client was cut off arrive after it
  reconnects exactly once, in order, before the live ones;
- the socket's session is resumed (on whichever interface the proxy picks): its group
  membership and channel session survive, no websocket.connect runs again;
- a history that expired meanwhile gives the "gone" signal, and live messages follow;
- a client that does not speak the protocol gets the group's frames unchanged;
- a Channels 1 page with the shipped websocketbridge.js, in headless Chromium, does all of it
  without a line of recovery code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.dataplane import cdp, processes
from tests.support.cuttable_proxy import CuttableProxy
from tests.support.eventually import eventually_async
from tests.support.redis_servers import RedisServer
from tests.support.stream_client import StreamClient

SETTINGS = "tests.dataplane.streams.settings"
RESUME_SECONDS = 8  # the tests' clients come back within 2-5 s; one test stays away longer


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer, chat_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[processes.Stack]:
    with processes.running_stack(
        processes.CHAT,
        chat_db,
        redis_server.url,
        tmp_path_factory.mktemp("streams"),
        interfaces=2,
        workers=1,
        settings=SETTINGS,
        env={
            "CHANNELWORKS_REDIS_MODE": "standalone",
            "CHANNELWORKS_INTERFACE_RESUME_SECONDS": str(RESUME_SECONDS),
        },
    ) as started:
        processes.ACTIVE.append(started)
        yield started
        processes.ACTIVE.remove(started)


@pytest.fixture
async def proxy(stack: processes.Stack) -> AsyncIterator[CuttableProxy]:
    targets = [("127.0.0.1", interface.port) for interface in stack.interfaces]
    async with CuttableProxy(targets) as started:
        yield started


class Publisher:
    """A plain socket on /publish/<group>/ straight to an interface (never cut)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> Publisher:
        self.socket = await connect(self.url, open_timeout=30)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.socket.close()

    async def publish(self, *texts: str) -> None:
        for text in texts:
            await self.socket.send(f"publish:{text}")


@contextlib.asynccontextmanager
async def following(proxy: CuttableProxy, group: str) -> AsyncIterator[StreamClient]:
    """A recovering client on /feed/<group>/ through the proxy, connected (session frame seen)."""
    client = StreamClient(f"ws://127.0.0.1:{proxy.port}/feed/{group}/")
    running = asyncio.ensure_future(client.run())
    try:
        await asyncio.wait_for(client.opened.wait(), 30)
        yield client
    finally:
        await client.stop()
        running.cancel()


async def reconnected(client: StreamClient) -> None:
    await eventually_async(
        lambda: client.connections >= 2 and client.opened.is_set(), timeout=30, interval=0.05
    )


async def wait_texts(client: StreamClient, group: str, count: int, timeout: float = 30) -> None:
    def arrived() -> None:
        assert len(client.texts(group)) >= count, client.texts(group)

    await eventually_async(arrived, timeout=timeout, message=f"{count} messages of {group}")


async def test_missed_messages_arrive_once_in_order_before_live_ones_on_a_resumed_session(
    stack: processes.Stack, proxy: CuttableProxy
) -> None:
    group = "feed-a"
    publish_url = stack.interfaces[0].ws_url(f"/publish/{group}/")
    async with (
        asyncio.timeout(120),
        following(proxy, group) as client,
        Publisher(publish_url) as publisher,
    ):
        await eventually_async(lambda: {"hello": group} in client.plain, timeout=30)
        await client.send("remember:kept across the drop")
        await eventually_async(lambda: {"remembered": True} in client.plain, timeout=30)
        await publisher.publish(*map(str, range(1, 6)))
        await wait_texts(client, group, 5)

        proxy.cut(2.0)  # every connection dropped, none accepted for 2 s
        await publisher.publish(*map(str, range(6, 16)))
        await reconnected(client)
        await publisher.publish(*map(str, range(16, 21)))
        await wait_texts(client, group, 20)
        await asyncio.sleep(0.5)  # any late duplicate would show now

        assert client.texts(group) == [str(n) for n in range(1, 21)]
        offsets = [d.offset for d in client.delivered]
        assert offsets == list(range(offsets[0], offsets[0] + 20))
        assert client.duplicates == 0  # the interface sent nothing twice
        assert client.connections == 2
        recovered = [c for c in client.controls if c["$cw"] == "recovered"]
        assert recovered and recovered[0]["s"] == group and recovered[0]["n"] >= 1
        # The session was resumed: no second websocket.connect (one hello), the channel
        # session is the same one, and the group membership moved with it.
        assert client.resumed == 1
        assert client.plain.count({"hello": group}) == 1
        await client.send("recall")
        await eventually_async(
            lambda: {"recalled": "kept across the drop"} in client.plain, timeout=30
        )


async def test_an_expired_history_is_reported_gone_and_live_messages_follow(
    stack: processes.Stack, proxy: CuttableProxy
) -> None:
    group = "short-b"
    publish_url = stack.interfaces[1].ws_url(f"/publish/{group}/")
    async with (
        asyncio.timeout(120),
        following(proxy, group) as client,
        Publisher(publish_url) as publisher,
    ):
        await publisher.publish("before")
        await wait_texts(client, group, 1)
        old_epoch = client.positions[group][0]

        proxy.cut(4.5)  # longer than the group's history TTL (3 s) with no send
        await reconnected(client)
        await eventually_async(
            lambda: any(c["$cw"] == "gone" and c["s"] == group for c in client.controls),
            timeout=30,
        )
        await publisher.publish("after")
        await wait_texts(client, group, 2)
        assert client.texts(group) == ["before", "after"]
        assert client.positions[group][0] != old_epoch  # a new epoch began


async def test_a_session_nobody_resumes_is_reported_closed_when_its_time_is_up(
    stack: processes.Stack, proxy: CuttableProxy
) -> None:
    group = "feed-d"
    publish_url = stack.interfaces[0].ws_url(f"/publish/{group}/")
    watch_url = stack.interfaces[1].ws_url(f"/feed/left-{group}/")
    async with (
        asyncio.timeout(120),
        following(proxy, group) as client,
        Publisher(publish_url) as publisher,
        connect(watch_url) as watcher,
    ):
        assert json.loads(await watcher.recv()) == {"hello": f"left-{group}"}
        await client.send("remember:the session")
        await eventually_async(lambda: {"remembered": True} in client.plain, timeout=30)
        await publisher.publish("1")
        await wait_texts(client, group, 1)  # it follows a stream: its session will be parked

        dropped = time.monotonic()
        proxy.cut(RESUME_SECONDS + 4)  # away for longer than the session waits
        left = json.loads(await asyncio.wait_for(watcher.recv(), RESUME_SECONDS + 20))
        # Reported once the time was up, not at the drop, by the consumer with its session.
        assert time.monotonic() - dropped >= RESUME_SECONDS - 1
        assert left == {"left": group, "value": "the session"}

        await reconnected(client)  # too late: a new connection, websocket.connect runs again
        await eventually_async(lambda: client.plain.count({"hello": group}) == 2, timeout=30)
        assert client.resumed == 0


async def test_a_client_that_does_not_ask_gets_plain_frames(stack: processes.Stack) -> None:
    group = "feed-c"
    async with asyncio.timeout(60):
        async with connect(stack.interfaces[0].ws_url(f"/feed/{group}/")) as plain:
            assert json.loads(await plain.recv()) == {"hello": group}
            async with Publisher(stack.interfaces[1].ws_url(f"/publish/{group}/")) as publisher:
                await publisher.publish("just text")
                assert await plain.recv() == "just text"


@pytest.mark.browser
@pytest.mark.skipif(not cdp.CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)")
async def test_a_channels1_page_with_the_shipped_client_recovers_across_a_cut(
    stack: processes.Stack, proxy: CuttableProxy, tmp_path: Path
) -> None:
    """The page has no recovery code: websocketbridge.js resumes and recovers by itself."""
    group = "feed-page"
    numbers = "received.filter(m => typeof m === 'number')"
    publish_url = stack.interfaces[0].ws_url(f"/publish/{group}/")
    async with (
        asyncio.timeout(180),
        cdp.chromium(tmp_path / "profile", tmp_path / "chromium.log") as browser,
        Publisher(publish_url) as publisher,
    ):
        page = await browser.new_page()
        try:
            await page.goto(f"http://127.0.0.1:{proxy.port}/feed/?group={group}")
            await page.wait_for("sessions.length === 1")
            await publisher.publish(*map(str, range(1, 6)))
            await page.wait_for(f"{numbers}.length === 5")

            proxy.cut(2.0)
            await publisher.publish(*map(str, range(6, 16)))
            await page.wait_for("sessions.length === 2", timeout=60)
            await publisher.publish(*map(str, range(16, 21)))
            await page.wait_for(f"{numbers}.length >= 20")
            await asyncio.sleep(0.5)  # a late duplicate would show now

            assert await page.evaluate(numbers) == list(range(1, 21))
            assert await page.evaluate("sessions") == [False, True]  # resumed, not a new one
            hellos = await page.evaluate(f"received.filter(m => m.hello === {group!r}).length")
            assert hellos == 1  # no second websocket.connect
            assert await page.evaluate("gone") == []
        finally:
            await page.screenshot(tmp_path / "page.png")
