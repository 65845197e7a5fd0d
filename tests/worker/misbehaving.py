"""Real ``channelworks-worker`` processes running the misbehaving consumers of ``hardening_app``
on a real redis-server, and the test standing in for the interface on the same layer."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from channelworks.layers import RedisChannelLayer
from tests.dataplane import processes
from tests.support.eventually import eventually_async

SETTINGS = "tests.worker.hardening_app.settings"


class Misbehaving:
    """One application: worker processes and a layer handle for the test, one key prefix."""

    def __init__(self, redis_url: str, root: Path) -> None:
        self.redis_url = redis_url
        self.root = root
        self.prefix = f"hard{secrets.token_hex(3)}"
        self.workers: list[processes.Worker] = []
        self.interfaces: list[processes.Interface] = []
        self.layer = RedisChannelLayer(hosts=[redis_url], prefix=self.prefix)

    def env(self, **extra: str) -> dict[str, str]:
        defaults = {
            "CHANNELWORKS_APP": self.prefix,
            "CHANNELWORKS_REDIS_MODE": "standalone",
            "CHANNELWORKS_REDIS_URL": self.redis_url,
            "CHANNELWORKS_LOG_FORMAT": "text",
            "CHANNELWORKS_DRAIN_SECONDS": "3",
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "PYTHONPATH": str(processes.REPO),
            "HARDENING_DIR": str(self.root),
        }
        return processes.clean_env(**{**defaults, **extra})

    async def start_worker(self, wait: bool = True, **env: str) -> processes.Worker:
        worker = processes.Worker(
            f"worker-{len(self.workers) + 1}", self.env(**env), self.root, processes.REPO
        )
        self.workers.append(worker)
        if wait:
            await eventually_async(worker.ready, timeout=processes.READY_SECONDS, interval=0.2)
        return worker

    async def start_interface(self, **env: str) -> processes.Interface:
        interface = processes.Interface(
            f"interface-{len(self.interfaces) + 1}", self.env(**env), self.root
        )
        self.interfaces.append(interface)
        await eventually_async(interface.ready, timeout=processes.READY_SECONDS, interval=0.2)
        return interface

    def lines(self, name: str) -> list[str]:
        path = self.root / name
        return path.read_text().splitlines() if path.exists() else []

    async def socket_send(
        self, reply_channel: str, text: str, order: int, path: str = "/ws/"
    ) -> None:
        """What the interface sends for a frame of the socket whose reply channel is given."""
        message = {"reply_channel": reply_channel, "path": path, "text": text, "order": order}
        await self.layer.send("websocket.receive", message)

    async def reply(self, reply_channel: str, timeout: float) -> dict[str, Any]:
        """The next reply on ``reply_channel`` (what the interface would relay)."""
        return dict(await asyncio.wait_for(self.layer.receive(reply_channel), timeout))

    def logs(self) -> str:
        started = [*self.interfaces, *self.workers]
        return "\n".join(f"----- {p.name} -----\n{p.log()[-6000:]}" for p in started)

    async def close(self) -> None:
        for process in [*self.interfaces, *self.workers]:
            if process.alive:
                process.stop(timeout=15)
        await self.layer.close()


@asynccontextmanager
async def misbehaving(redis_url: str, root: Path) -> AsyncIterator[Misbehaving]:
    app = Misbehaving(redis_url, root)
    try:
        yield app
    except BaseException:
        print(app.logs())
        raise
    finally:
        await app.close()


def pid_of(line: str) -> int:
    return int(line.split()[0])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
