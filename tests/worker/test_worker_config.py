"""The worker's environment: read once into a frozen config; the layer it names."""

import dataclasses

import pytest

from channelworks import exceptions
from channelworks.layers import InMemoryChannelLayer
from channelworks.layers.env import build_layer
from channelworks_worker import config, safeguards

BASE = {"CHANNELWORKS_APP": "demo.chat", "DJANGO_SETTINGS_MODULE": "chat.settings"}


def test_defaults_follow_the_image_contract():
    parsed = config.from_env({**BASE, "CHANNELWORKS_REDIS_URL": "redis://redis:6379/0"})
    assert parsed.layer.app == "demo.chat"
    assert parsed.layer.mode == "standalone"
    assert parsed.concurrency == 16
    assert parsed.metrics_port == 9100
    assert parsed.log_format == "json"
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.concurrency = 2  # type: ignore[misc]


def test_every_knob_is_read():
    parsed = config.from_env(
        {
            **BASE,
            "CHANNELWORKS_REDIS_MODE": "cluster",
            "CHANNELWORKS_REDIS_URL": "redis://redis-0:6379",
            "CHANNELWORKS_REDIS_PASSWORD": "s3cret",
            "CHANNELWORKS_ROUTING": "chat.routing.channel_routing",
            "CHANNELWORKS_WORKER_CONCURRENCY": "4",
            "CHANNELWORKS_WORKER_CHANNELS": "websocket.receive, http.request",
            "CHANNELWORKS_WORKER_EXCLUDE_CHANNELS": "http.request",
            "CHANNELWORKS_DRAIN_SECONDS": "5",
            "CHANNELWORKS_METRICS_PORT": "9200",
            "CHANNELWORKS_LOG_FORMAT": "text",
            "CHANNELWORKS_LOG_LEVEL": "debug",
            "CHANNELWORKS_LAYER_CAPACITY": "500",
            "CHANNELWORKS_LAYER_EXPIRY": "30",
            "CHANNELWORKS_WORKER_MAX_DELIVERIES": "5",
            "CHANNELWORKS_WORKER_DEAD_LETTER_CHANNEL": "chat.dead",
            "CHANNELWORKS_WORKER_TIME_LIMIT_SECONDS": "12.5",
            "CHANNELWORKS_WORKER_HTTP_RETRY_METHODS": "get, head, put",
            "CHANNELWORKS_WORKER_TIME_LIMITS": "http.request=25, websocket.receive=2.5",
        }
    )
    assert (parsed.layer.mode, parsed.concurrency, parsed.metrics_port) == ("cluster", 4, 9200)
    assert parsed.only_channels == ("websocket.receive", "http.request")
    assert parsed.exclude_channels == ("http.request",)
    assert (parsed.drain_seconds, parsed.log_format, parsed.log_level) == (5.0, "text", "DEBUG")
    assert (parsed.layer.tuning.capacity, parsed.layer.tuning.expiry) == (500, 30.0)
    assert "s3cret" not in repr(parsed)
    assert parsed.protections.max_deliveries == 5
    assert parsed.protections.dead_letter_channel == "chat.dead"
    assert parsed.protections.time_limit == 12.5
    assert parsed.protections.retry_methods == ("GET", "HEAD", "PUT")
    assert parsed.protections.time_limit_for("http.request") == 25.0
    assert parsed.protections.time_limit_for("websocket.receive") == 2.5
    assert parsed.protections.time_limit_for("websocket.connect") == 12.5


def test_the_protections_have_safe_defaults():
    parsed = config.from_env({**BASE, "CHANNELWORKS_REDIS_MODE": "memory"})
    assert parsed.protections == safeguards.Safeguards(
        max_deliveries=3,
        dead_letter_channel="channelworks.dead_letters",
        time_limit=60.0,
        retry_methods=("GET", "HEAD", "OPTIONS"),
    )
    nothing_retried = config.from_env(
        {**BASE, "CHANNELWORKS_REDIS_MODE": "memory", "CHANNELWORKS_WORKER_HTTP_RETRY_METHODS": ""}
    )
    assert nothing_retried.http_retry_methods == ()


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"DJANGO_SETTINGS_MODULE": "x"}, "CHANNELWORKS_APP is required"),
        ({**BASE, "CHANNELWORKS_REDIS_MODE": "sharded"}, "must be one of"),
        ({**BASE}, "CHANNELWORKS_REDIS_URL is required"),
        ({"CHANNELWORKS_APP": "a", "CHANNELWORKS_REDIS_MODE": "memory"}, "DJANGO_SETTINGS_MODULE"),
        (
            {**BASE, "CHANNELWORKS_REDIS_MODE": "memory", "CHANNELWORKS_WORKER_CONCURRENCY": "0"},
            "at least 1",
        ),
        (
            {**BASE, "CHANNELWORKS_REDIS_MODE": "memory", "CHANNELWORKS_METRICS_PORT": "x"},
            "must be a TCP port",
        ),
        (
            {**BASE, "CHANNELWORKS_REDIS_MODE": "memory", "CHANNELWORKS_LOG_FORMAT": "xml"},
            "json or text",
        ),
        (
            {
                **BASE,
                "CHANNELWORKS_REDIS_MODE": "memory",
                "CHANNELWORKS_WORKER_MAX_DELIVERIES": "0",
            },
            "CHANNELWORKS_WORKER_MAX_DELIVERIES must be at least 1",
        ),
        (
            {
                **BASE,
                "CHANNELWORKS_REDIS_MODE": "memory",
                "CHANNELWORKS_WORKER_TIME_LIMIT_SECONDS": "0",
            },
            "CHANNELWORKS_WORKER_TIME_LIMIT_SECONDS must be at least",
        ),
        (
            {
                **BASE,
                "CHANNELWORKS_REDIS_MODE": "memory",
                "CHANNELWORKS_WORKER_DEAD_LETTER_CHANNEL": "a b!",
            },
            "must be a normal channel name",
        ),
        (
            {
                **BASE,
                "CHANNELWORKS_REDIS_MODE": "memory",
                "CHANNELWORKS_WORKER_HTTP_RETRY_METHODS": "GET,G E",
            },
            "is not an HTTP method",
        ),
        (
            {
                **BASE,
                "CHANNELWORKS_REDIS_MODE": "memory",
                "CHANNELWORKS_WORKER_TIME_LIMITS": "http.request=soon",
            },
            "takes channel=seconds pairs",
        ),
    ],
)
def test_bad_environments_are_refused_with_the_variable_named(env, complaint):
    with pytest.raises(exceptions.ConfigurationError, match=complaint):
        config.from_env(env)


def test_memory_mode_builds_an_in_memory_layer_with_the_app_prefix():
    parsed = config.from_env(
        {**BASE, "CHANNELWORKS_REDIS_MODE": "memory", "CHANNELWORKS_LAYER_CAPACITY": "7"}
    )
    layer = build_layer(parsed.layer)
    assert isinstance(layer, InMemoryChannelLayer)
    assert layer.config.prefix == "demo.chat"
    assert layer.get_capacity("websocket.receive") == 7
