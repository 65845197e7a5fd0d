"""The page of a project made by ``channelworks init`` reconnects by itself, as docs/dev-mode.md
says: in headless Chromium against ``channelworks dev``, a saved change to the consumers restarts
the server (its sockets close with 1012), and the same page, not reloaded, is connected again
and talks to the new code."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.cli import cli
from tests.dataplane import cdp, devmode, processes

pytestmark = cdp.NEEDS_CHROMIUM
STATUS = "document.querySelector('#status').textContent"


async def say(page: cdp.Page, text: str) -> None:
    await page.evaluate(
        f"document.querySelector('#text').value = {json.dumps(text)};"
        "document.querySelector('#say button').click(); true"
    )


def shown(line: str) -> str:
    """JavaScript: whether the page's log shows ``line``."""
    items = "[...document.querySelectorAll('#log li')]"
    return f"{items}.some(li => li.textContent === {json.dumps(line)})"


async def test_the_page_reconnects_after_a_code_reload_and_talks_to_the_new_code(
    tmp_path: Path,
) -> None:
    project = await asyncio.to_thread(cli.init, tmp_path, "notice_board")
    consumers = project / "notice_board" / "consumers.py"
    port = processes.free_port()
    argv = devmode.channelworks_dev(project, port)  # with reload, as a developer runs it
    with devmode.running("dev", argv, tmp_path, project) as dev:
        url = await asyncio.to_thread(dev.wait_for_url)
        async with (
            asyncio.timeout(240),
            cdp.chromium(tmp_path / "profile", tmp_path / "chromium.log") as browser,
        ):
            page = await browser.new_page()
            try:
                await page.goto(url)
                await page.wait_for(f"{STATUS} === 'connected'")
                await page.evaluate(
                    "window.closeCodes = [];"
                    "bridge.socket.addEventListener('close', e => closeCodes.push(e.code)); true"
                )
                await say(page, "before")
                await page.wait_for(shown("you said: before"))

                source = consumers.read_text()
                consumers.write_text(source.replace('f"you said: {text}"', 'f"you wrote: {text}"'))
                await asyncio.to_thread(dev.wait_for_url, 2)  # the restarted server serves

                await page.wait_for("closeCodes.includes(1012)", timeout=60)
                await page.wait_for(f"{STATUS} === 'connected'", timeout=60)
                await say(page, "after")
                await page.wait_for(shown("you wrote: after"), timeout=60)
                # The same page: what it showed before the restart is still there.
                assert await page.evaluate(shown("you said: before"))
            finally:
                await page.screenshot(tmp_path / "page.png")
