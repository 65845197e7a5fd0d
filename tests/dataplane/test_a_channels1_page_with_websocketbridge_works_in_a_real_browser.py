"""A page written for Channels 1 loads ``{% static "channels/js/websocketbridge.js" %}`` and uses
``channels.WebSocketBridge``; ported unchanged, it works in headless Chromium against real
interface and worker processes: the script is served, the socket opens, two streams are
demultiplexed, a send on a stream is answered, and the page reconnects by itself after its
interface process is restarted."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.dataplane import cdp, devmode, processes
from tests.dataplane.conftest import ChatOnRedis

pytestmark = cdp.NEEDS_CHROMIUM
SETTINGS = "tests.dataplane.bridgepage.settings"
SCRIPT = "/static/channels/js/websocketbridge.js"


class InterfaceOnPort(processes.Interface):
    """An interface process on a given port: the one a restarted interface comes back on."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, port: int) -> None:
        self.port = port
        self.metrics_port = processes.free_port()
        full_env = {
            **env,
            "PORT": str(port),
            "CHANNELWORKS_INTERFACE_HOST": "127.0.0.1",
            "CHANNELWORKS_METRICS_HOST": "127.0.0.1",
            "CHANNELWORKS_METRICS_PORT": str(self.metrics_port),
        }
        processes.Process.__init__(
            self, name, [str(processes.BIN / "channelworks-interface")], full_env, log_dir
        )


@pytest.fixture
def stack(chat_on_redis: ChatOnRedis) -> processes.Stack:
    return chat_on_redis(SETTINGS)


def events(stream: str) -> str:
    """JavaScript: the actions the page showed for ``stream``."""
    return f"received.filter(e => e.stream === {json.dumps(stream)}).map(e => e.action)"


def test_the_script_is_served_at_the_channels_1_path(stack: processes.Stack) -> None:
    reply = httpx.get(stack.interfaces[0].base_url + SCRIPT, timeout=30)
    assert reply.status_code == 200
    assert "javascript" in reply.headers["content-type"]
    assert "WebSocketBridge" in reply.text


def test_channelworks_dev_serves_the_script_too(chat_db: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(chat_db, state / processes.CHAT.database)
    argv = devmode.channelworks_dev(processes.CHAT.folder, processes.free_port(), "--no-reload")
    with devmode.running(
        "dev", argv, tmp_path, processes.CHAT.folder, CHANNELWORKS_STATE_DIR=str(state)
    ) as dev:
        url = dev.wait_for_url()
        reply = httpx.get(url.rstrip("/") + SCRIPT, timeout=30)
        module = httpx.get(url.rstrip("/") + SCRIPT.replace(".js", ".mjs"), timeout=30)
    assert reply.status_code == 200 and "WebSocketBridge" in reply.text
    assert module.status_code == 200 and "export const WebSocketBridge" in module.text
    assert "javascript" in module.headers["content-type"]  # browsers refuse modules otherwise


async def test_the_page_demultiplexes_sends_on_a_stream_and_reconnects(
    stack: processes.Stack, tmp_path: Path
) -> None:
    interface = stack.interfaces[0]
    page_url = f"{interface.base_url}/bridge/"
    async with (
        asyncio.timeout(240),
        cdp.chromium(tmp_path / "profile", tmp_path / "chromium.log") as browser,
    ):
        page = await browser.new_page()
        try:
            await page.goto(page_url)
            await page.wait_for("document.querySelector('#status').textContent === 'open 1'")
            greeting = await page.wait_for(f"{events('greeting')}[0]")
            assert greeting["hello"] == "from the greeting stream"
            # The frame sent on the echo stream when the socket opened comes back on it only.
            assert await page.wait_for(f"{events('echo')}[0]") == {"echo": {"opened": 1}}
            plain = await page.wait_for(f"{events('(none)')}[0]")
            assert plain == {"plain": "not multiplexed"}  # listen() gets unstreamed frames

            await page.evaluate(
                "document.querySelector('#text').value = 'typed';"
                "document.querySelector('#send').click(); true"
            )
            await page.wait_for(f"{events('echo')}.some(a => a.echo && a.echo.text === 'typed')")
            assert await page.evaluate(f"{events('greeting')}.length") == 1

            # The interface process goes away and comes back on the same port.
            await asyncio.to_thread(interface.stop)
            await page.wait_for("document.querySelector('#status').textContent === 'closed'")
            restarted = InterfaceOnPort(
                "interface-restarted", stack.env(), stack.log_dir, interface.port
            )
            stack.interfaces.append(restarted)
            await asyncio.to_thread(stack.wait_ready, [restarted])

            await page.wait_for(
                "document.querySelector('#status').textContent === 'open 2'", timeout=60
            )
            await page.wait_for(f"{events('greeting')}.length === 2")
            await page.wait_for(f"{events('echo')}.some(a => a.echo && a.echo.opened === 2)")
            # The same page, not a reload: what it showed before is still there.
            assert await page.evaluate("opened") == 2
            assert await page.evaluate(f"{events('echo')}[0]") == {"echo": {"opened": 1}}
        finally:
            await page.screenshot(tmp_path / "page.png")
