"""Interface and worker processes build their layer from CHANNELWORKS_* variables."""

from __future__ import annotations

import asyncio

import pytest

from channelworks.exceptions import ConfigurationError
from channelworks.layers import InMemoryChannelLayer, RedisChannelLayer, env
from tests.support.redis_servers import RedisServer


def test_memory_is_the_default_and_the_app_is_the_prefix() -> None:
    settings = env.settings_from_env({"CHANNELWORKS_APP": "demo.chat"})
    layer = env.build_layer(settings)
    assert isinstance(layer, InMemoryChannelLayer)
    assert layer.config.prefix == "demo.chat"


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"CHANNELWORKS_REDIS_MODE": "sentinel"}, "must be one of memory, local"),
        ({"CHANNELWORKS_REDIS_MODE": "cluster"}, "needs CHANNELWORKS_REDIS_URL"),
    ],
)
def test_bad_variables_name_the_variable(variables: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        env.settings_from_env(variables)


def test_the_url_is_shown_without_its_password() -> None:
    settings = env.settings_from_env(
        {"CHANNELWORKS_REDIS_MODE": "external", "CHANNELWORKS_REDIS_URL": "redis://:pw@r:6379"}
    )
    assert settings.redacted_url() == "redis://:***@r:6379"


async def test_password_from_its_own_variable_reaches_redis() -> None:
    with RedisServer(requirepass="pw") as server:
        settings = env.settings_from_env(
            {
                "CHANNELWORKS_APP": "demo.chat",
                "CHANNELWORKS_REDIS_MODE": "standalone",
                "CHANNELWORKS_REDIS_URL": f"redis://127.0.0.1:{server.port}",
                "CHANNELWORKS_REDIS_PASSWORD": "pw",
            }
        )
        layer = env.build_layer(settings)
        try:
            assert isinstance(layer, RedisChannelLayer)
            await layer.send("jobs", {"n": 1})
            assert await asyncio.wait_for(layer.receive("jobs"), 5) == {"n": 1}
        finally:
            await layer.close()


async def test_cluster_mode_speaks_the_cluster_protocol(cluster_url: str) -> None:
    settings = env.settings_from_env(
        {
            "CHANNELWORKS_REDIS_MODE": "cluster",
            "CHANNELWORKS_REDIS_URL": cluster_url.replace("redis+cluster://", "redis://"),
        }
    )
    layer = env.build_layer(settings)
    try:
        assert isinstance(layer, RedisChannelLayer) and layer.plan.cluster
        await layer.send("jobs", {"n": 2})
        assert await asyncio.wait_for(layer.receive("jobs"), 5) == {"n": 2}
    finally:
        await layer.close()
