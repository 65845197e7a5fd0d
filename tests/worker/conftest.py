"""Worker tests run the runtime in-process against the in-memory layer (and Django set up)."""

import pytest

from tests.sdk.project import testenv

testenv.setup()


@pytest.fixture
def registry():
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


@pytest.fixture(params=["memory", "redis"])
async def layer(request):
    """The layer a worker runs on, installed as the process's default (as ``main`` does):
    in-memory, and the Redis layer on a real redis-server."""
    import secrets

    from channelworks import asgi
    from channelworks.layers import InMemoryChannelLayer, RedisChannelLayer

    if request.param == "memory":
        backend = InMemoryChannelLayer(capacity=5000)
    else:
        url = request.getfixturevalue("redis_url")
        backend = RedisChannelLayer(
            hosts=[url], prefix=f"wtest{secrets.token_hex(3)}", capacity=5000
        )
    saved = asgi.channel_layers.set("default", backend)
    yield backend
    asgi.channel_layers.set("default", saved)
    await backend.close()
