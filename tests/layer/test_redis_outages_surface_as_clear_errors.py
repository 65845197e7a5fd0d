"""Redis unreachable: a ConnectionError naming the address, after bounded retries, never a hang."""

from __future__ import annotations

import socket
import time

import pytest

from channelworks.exceptions import LayerConnectionError
from channelworks.layers import RedisChannelLayer


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_redis_raises_connection_error_naming_the_address() -> None:
    port = _closed_port()
    layer = RedisChannelLayer(hosts=[("127.0.0.1", port)], retry_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(ConnectionError) as raised:
        await layer.send("anything", {"n": 1})
    took = time.monotonic() - started
    await layer.close()
    assert isinstance(raised.value, LayerConnectionError)
    assert f"redis://127.0.0.1:{port}" in str(raised.value)
    assert 0.5 < took < 5, took
