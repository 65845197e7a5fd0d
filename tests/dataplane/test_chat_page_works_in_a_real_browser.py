"""Two people in headless Chromium: each opens the chat page that ``channelworks dev`` serves, logs
in with the form, joins the lobby; what one types appears on the other's page."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from tests.dataplane import cdp, devmode, processes

pytestmark = cdp.NEEDS_CHROMIUM


async def log_in_and_join(page: cdp.Page, url: str, username: str, password: str) -> None:
    await page.goto(url)  # redirected to the login form
    await page.wait_for("document.querySelector('#id_username') !== null")
    await page.evaluate(
        f"document.querySelector('#id_username').value = {json.dumps(username)};"
        f"document.querySelector('#id_password').value = {json.dumps(password)};"
        "document.querySelector('#login').click(); true"
    )
    await page.wait_for("location.pathname === '/' && document.querySelector('#status') !== null")
    await page.wait_for("document.querySelector('#status').textContent === 'connected'")
    await page.wait_for(f"document.querySelector('#me').textContent === {json.dumps(username)}")
    join = "document.querySelector('button[data-join=\"lobby\"]')"
    await page.wait_for(f"{join} !== null")
    await page.evaluate(f"{join}.click(); true")
    await page.wait_for("document.querySelector('#room-title').textContent === 'Lobby'")


async def test_a_message_typed_on_one_page_appears_on_the_other(
    chat_db: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(chat_db, state / processes.CHAT.database)
    port = processes.free_port()
    argv = devmode.channelworks_dev(processes.CHAT.folder, port, "--no-reload")
    with devmode.running(
        "dev", argv, tmp_path, processes.CHAT.folder, CHANNELWORKS_STATE_DIR=str(state)
    ) as dev:
        url = await asyncio.to_thread(dev.wait_for_url)
        async with (
            asyncio.timeout(180),
            cdp.chromium(tmp_path / "profile", tmp_path / "chromium.log") as browser,
        ):
            alice = await browser.new_page()
            bob = await browser.new_page()
            try:
                await log_in_and_join(alice, url, "alice", "alice-chat")
                await log_in_and_join(bob, url, "bob", "bob-chat")
                await bob.evaluate(
                    "document.querySelector('#message-input').value = 'hello from the browser';"
                    "document.querySelector('#send').click(); true"
                )
                said = await alice.wait_for(
                    "[...document.querySelectorAll('#log li')].map(li => li.textContent)"
                    ".find(text => text.includes('hello from the browser'))"
                )
                await bob.wait_for(
                    "document.querySelector('#log').textContent.includes('hello from the browser')"
                )
            finally:
                await alice.screenshot(tmp_path / "alice.png")
                await bob.screenshot(tmp_path / "bob.png")
    assert said == "bobhello from the browser"  # <b>bob</b> then the text
