"""Redis unreachable: a ConnectionError naming the address, after bounded retries, never a hang."""

from __future__ import annotations

import time

import pytest

from channelworks.exceptions import LayerConnectionError
from channelworks.layers import RedisChannelLayer
from tests.support.processes import free_port


async def test_unreachable_redis_raises_connection_error_naming_the_address() -> None:
    port = free_port()
    layer = RedisChannelLayer(hosts=[("127.0.0.1", port)], retry_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(ConnectionError) as raised:
        await layer.send("anything", {"n": 1})
    took = time.monotonic() - started
    await layer.close()
    assert isinstance(raised.value, LayerConnectionError)
    assert f"redis://127.0.0.1:{port}" in str(raised.value)
    assert 0.5 < took < 5, took
