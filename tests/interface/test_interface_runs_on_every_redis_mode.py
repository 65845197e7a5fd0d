"""The image contract's Redis modes: a six-node Redis Cluster, and a Redis with a password given
apart from the URL (as the operator does, from a Secret)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from channelworks.layers import RedisChannelLayer
from tests.interface.support import FakeWorker, InterfaceProcess
from tests.support import redis_servers


async def _round_trip(interface: InterfaceProcess, layer: RedisChannelLayer) -> None:
    try:
        interface.wait_ready()
        async with FakeWorker(layer), connect(interface.ws_url("/mode/")) as ws:
            await ws.send("over the layer")
            assert await ws.recv() == "over the layer"
            async with httpx.AsyncClient() as client:
                response = await client.post(f"{interface.base_url}/mode", content=b"hi")
            assert response.content == b"echo:hi"
    finally:
        await layer.close()
        assert interface.stop() == 0


async def test_cluster_mode(cluster_url: str, tmp_path: Path) -> None:
    prefix = f"itest{secrets.token_hex(4)}"
    interface = InterfaceProcess(
        {
            "CHANNELWORKS_APP": prefix,
            "CHANNELWORKS_REDIS_MODE": "cluster",
            "CHANNELWORKS_REDIS_URL": cluster_url,
            "CHANNELWORKS_INTERFACE_DRAIN_DELAY": "0",
        },
        tmp_path / "interface.log",
    )
    await _round_trip(interface, RedisChannelLayer(hosts=[cluster_url], prefix=prefix))


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[redis_servers.RedisServer]:
    with redis_servers.RedisServer(requirepass="s3cret/pass") as server:
        yield server


async def test_password_from_its_own_variable(
    redis_with_password: redis_servers.RedisServer, tmp_path: Path
) -> None:
    prefix = f"itest{secrets.token_hex(4)}"
    interface = InterfaceProcess(
        {
            "CHANNELWORKS_APP": prefix,
            "CHANNELWORKS_REDIS_MODE": "external",
            "CHANNELWORKS_REDIS_URL": f"redis://127.0.0.1:{redis_with_password.port}/0",
            "CHANNELWORKS_REDIS_PASSWORD": "s3cret/pass",
            "CHANNELWORKS_INTERFACE_DRAIN_DELAY": "0",
        },
        tmp_path / "interface.log",
    )
    layer = RedisChannelLayer(hosts=[redis_with_password.url], prefix=prefix)
    await _round_trip(interface, layer)
    assert "s3cret" not in interface.log()
