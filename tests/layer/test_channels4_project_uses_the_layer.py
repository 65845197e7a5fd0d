"""An ordinary Channels 4 consumer runs on our layer by changing the BACKEND line only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from tests.sdk.project import testenv


class RoomConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.channel_layer.group_add("room", self.channel_name)
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send("room", {"type": "room.message", "text": content})

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send_json(event["text"])

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard("room", self.channel_name)


@pytest.fixture
def channel_layers_setting(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[None]:
    testenv.setup()  # the suite's one Django configuration
    config: dict[str, Any] = {"prefix": f"compat{backend}"}
    if backend == "redis":
        config["hosts"] = [request.getfixturevalue("redis_url")]
    elif backend == "cluster":
        config["hosts"] = [request.getfixturevalue("cluster_url")]
    elif backend == "local":
        config["path"] = f"{tmp_path}/layer.sock"
    backends = {
        "local": "channelworks.layers.LocalChannelLayer",
        "memory": "channelworks.layers.InMemoryChannelLayer",
        "redis": "channelworks.layers.RedisChannelLayer",
        "cluster": "channelworks.layers.RedisChannelLayer",
    }
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": backends[backend], "CONFIG": config}}
    ):
        channel_layers.backends.clear()
        yield
    channel_layers.backends.clear()


async def test_channels_consumers_chat_through_our_layer(channel_layers_setting: None) -> None:
    alice = WebsocketCommunicator(RoomConsumer.as_asgi(), "/room/")
    bob = WebsocketCommunicator(RoomConsumer.as_asgi(), "/room/")
    assert (await alice.connect(timeout=10))[0] and (await bob.connect(timeout=10))[0]
    await alice.send_json_to({"from": "alice", "text": "hi"})
    assert await bob.receive_json_from(timeout=5) == {"from": "alice", "text": "hi"}
    assert await alice.receive_json_from(timeout=5) == {"from": "alice", "text": "hi"}
    await alice.disconnect()
    await bob.disconnect()
    await channel_layers["default"].close()
    channel_layers.backends.clear()
