"""Not collected by the suite (no ``test_`` prefix): the run that
test_a_stopped_test_run_leaves_no_process.py starts and stops with SIGTERM. Its one test holds
what tests start: the session's redis-server, headless Chromium with a page open, and a process
in a session of its own (as ``channelworks dev`` and the interface and worker processes run);
it writes their process ids to ``$STOPPED_RUN_PIDS`` and waits to be stopped."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import psutil  # type: ignore[import-untyped, unused-ignore]

from tests.dataplane import cdp
from tests.support import processes, redis_servers


async def test_holds_its_processes_until_it_is_stopped(
    redis_server: redis_servers.RedisServer, tmp_path: Path
) -> None:
    sleeper = processes.Process("sleeper", ["sleep", "600"], dict(os.environ), tmp_path)
    try:
        async with cdp.chromium(tmp_path / "profile", tmp_path / "chromium.log") as browser:
            await browser.new_page()
            held = [
                {"pid": child.pid, "created": child.create_time(), "name": child.name()}
                for child in psutil.Process().children(recursive=True)
            ]
            ready = Path(os.environ["STOPPED_RUN_PIDS"])
            ready.with_suffix(".tmp").write_text(json.dumps(held))
            ready.with_suffix(".tmp").replace(ready)  # whole, or not there yet
            await asyncio.sleep(600)
    finally:
        sleeper.stop()
