"""Headless Chromium driven over the Chrome DevTools Protocol, with the ``websockets`` client.

No browser-automation package: the protocol is JSON over a WebSocket. ``Chromium`` starts Debian's
``/usr/bin/chromium`` with a fresh profile on a free debugging port; ``Page`` is a tab in a
browser context of its own (its own cookies, as a second browser window of another person).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = Path("/usr/bin/chromium")
# The marks of every test module that drives Chromium: ``pytestmark = cdp.NEEDS_CHROMIUM``.
NEEDS_CHROMIUM = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium package (/usr/bin/chromium): apt-get install -y chromium",
    ),
]
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
START_SECONDS = 60.0


class ProtocolError(RuntimeError):
    pass


class Browser:
    """One DevTools connection to the browser; commands for pages go over it with a session."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self._connection:
                message = json.loads(frame)
                future = self._waiting.pop(message.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(message)
        finally:  # no reply comes any more: no call waits for one (a stopped run tears down)
            waiting, self._waiting = self._waiting, {}
            for future in waiting.values():
                if not future.done():
                    future.set_exception(ProtocolError("the DevTools connection is closed"))

    async def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        if self._reader.done():
            raise ProtocolError(f"{method}: the DevTools connection is closed")
        number = next(self._ids)
        request: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session is not None:
            request["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        await self._connection.send(json.dumps(request))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise ProtocolError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def new_page(self) -> Page:
        """A tab in a new browser context: cookies and storage of its own."""
        context = (await self.call("Target.createBrowserContext"))["browserContextId"]
        target = await self.call(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context}
        )
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        return page

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._connection.close()


class Page:
    """A browser tab: navigate, run JavaScript in it, wait for what it shows."""

    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._browser.call(method, params, self._session)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", {"url": url})
        await self.wait_for(
            f"document.readyState === 'complete' && location.href.startsWith({json.dumps(url)})"
        )

    async def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Evaluate ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(ProtocolError):  # a navigation replaced the context
                last = await self.evaluate(expression)
                if last:
                    return last
            await asyncio.sleep(0.1)
        text = await self.evaluate("document.body ? document.body.innerText : ''")
        raise AssertionError(f"{expression} still {last!r} after {timeout}s; page shows:\n{text}")

    async def screenshot(self, path: Path) -> None:
        """Save what the page shows (for a failed test); nothing while the test is cancelled
        (a stopped run tears down, and the browser may be gone already)."""
        import base64

        task = asyncio.current_task()
        if task is not None and task.cancelling():
            return
        shot = await self.call("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def chromium(profile: Path, log: Path) -> AsyncIterator[Browser]:
    """Start headless Chromium with a fresh profile; stop it and all its processes after."""
    profile.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = await _devtools_url(profile, process, log)
            connection = await connect(url, max_size=None, open_timeout=30)
            browser = Browser(connection)
            try:
                yield browser
            finally:
                await browser.close()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            shutil.rmtree(profile, ignore_errors=True)


async def _devtools_url(profile: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    """The browser's DevTools WebSocket URL, from the DevToolsActivePort file it writes."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited ({process.returncode}):\n{log.read_text()}")
        lines = marker.read_text().split() if marker.exists() else []
        if len(lines) >= 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.1)
    raise RuntimeError(f"chromium did not open its DevTools port:\n{log.read_text()}")
