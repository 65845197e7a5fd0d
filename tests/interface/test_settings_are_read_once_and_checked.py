"""The interface's settings: defaults, the image contract's variables, and clear refusals."""

from __future__ import annotations

import pytest

from channelworks.exceptions import ConfigurationError
from channelworks.layers import InMemoryChannelLayer, RedisChannelLayer
from channelworks.layers.env import build_layer
from channelworks_interface import config


def test_defaults_serve_8000_with_metrics_on_9100_and_the_memory_layer() -> None:
    loaded = config.load({})
    assert (loaded.host, loaded.port, loaded.metrics_port) == ("0.0.0.0", 8000, 9100)
    assert loaded.layer.mode == "memory"
    assert isinstance(build_layer(loaded.layer), InMemoryChannelLayer)


def test_the_image_contract_variables_build_the_redis_layer() -> None:
    loaded = config.load(
        {
            "CHANNELWORKS_APP": "demo.chat",
            "CHANNELWORKS_REDIS_MODE": "cluster",
            "CHANNELWORKS_REDIS_URL": "redis://chat-redis:6379",
            "CHANNELWORKS_REDIS_PASSWORD": "s3cr:t@",
            "CHANNELWORKS_LAYER_CAPACITY": "1000",
            "CHANNELWORKS_LAYER_EXPIRY": "60",
            "PORT": "8080",
        }
    )
    assert "s3cr" not in repr(loaded)  # the password never reaches logs
    built = build_layer(loaded.layer)
    assert isinstance(built, RedisChannelLayer)
    assert built.plan.cluster is True
    assert built.config.prefix == "demo.chat"
    assert built.config.capacity == 1000
    assert loaded.port == 8080


def test_a_url_alone_means_one_redis_and_external_lets_the_url_decide() -> None:
    url_only = config.load({"CHANNELWORKS_APP": "a", "CHANNELWORKS_REDIS_URL": "redis://r"})
    assert url_only.layer.mode == "standalone"
    external = config.load(
        {
            "CHANNELWORKS_APP": "a",
            "CHANNELWORKS_REDIS_MODE": "external",
            "CHANNELWORKS_REDIS_URL": "redis+cluster://r:7000",
        }
    )
    built = build_layer(external.layer)
    assert isinstance(built, RedisChannelLayer) and built.plan.cluster is True


def test_flags_override_the_environment() -> None:
    loaded = config.load({"PORT": "8000"}, ["--port", "9000", "--metrics-port", "9200"])
    assert (loaded.port, loaded.metrics_port) == (9000, 9200)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"CHANNELWORKS_REDIS_MODE": "standalone"}, "needs CHANNELWORKS_REDIS_URL"),
        ({"CHANNELWORKS_REDIS_URL": "redis://r"}, "needs CHANNELWORKS_APP"),
        ({"CHANNELWORKS_REDIS_MODE": "sentinel"}, "must be one of memory, local, standalone"),
        ({"CHANNELWORKS_INTERFACE_HTTP_TIMEOUT": "soon"}, "must be a number"),
        ({"CHANNELWORKS_INTERFACE_HTTP_TIMEOUT": "0"}, "must be at least 0.001"),
        ({"PORT": "70000"}, "must be a TCP port"),
        ({"CHANNELWORKS_INTERFACE_PROXY_HEADERS": "maybe"}, "must be true or false"),
        (
            {
                "CHANNELWORKS_INTERFACE_DRAIN_WINDOW": "40",
                "CHANNELWORKS_INTERFACE_GRACE_PERIOD": "30",
            },
            "must be at most CHANNELWORKS_INTERFACE_GRACE_PERIOD minus 3s",
        ),
    ],
)
def test_bad_values_are_refused_with_what_is_allowed(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        config.load(env)
