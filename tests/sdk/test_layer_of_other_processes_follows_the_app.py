"""The default layer of a Django process that is not a worker follows the application the image
contract's environment names: built from it, or refused when the settings point elsewhere."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from channelworks import app_layer
from channelworks.layers import InMemoryChannelLayer, RedisChannelLayer
from channelworks.layers import env as layer_env

APP = {
    "CHANNELWORKS_APP": "demo.chat",
    "CHANNELWORKS_REDIS_MODE": "standalone",
    "CHANNELWORKS_REDIS_URL": "redis://chat-redis:6379/0",
}


def settings(env: dict[str, str]) -> layer_env.LayerSettings | None:
    return app_layer.app_settings(env)


def test_no_app_variables_means_no_app_but_the_workers_default_prefix() -> None:
    assert settings({}) is None
    config = app_layer.default_layer_config("default", RedisChannelLayer, {}, None, {})
    assert config["prefix"] == layer_env.LayerSettings().app  # what a worker uses unconfigured


def test_a_missing_prefix_is_the_apps_name() -> None:
    config = app_layer.default_layer_config(
        "default", RedisChannelLayer, {"hosts": ["redis://chat-redis:6379"]}, settings(APP), APP
    )
    assert config == {"hosts": ["redis://chat-redis:6379"], "prefix": "demo.chat"}


def test_another_prefix_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"'asgi'.*'demo\.chat' \(CHANNELWORKS_APP\)"):
        app_layer.default_layer_config(
            "default", RedisChannelLayer, {"prefix": "asgi"}, settings(APP), APP
        )


def test_another_kind_of_layer_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"InMemoryChannelLayer.*RedisChannelLayer"):
        app_layer.default_layer_config("default", InMemoryChannelLayer, {}, settings(APP), APP)


@pytest.mark.parametrize(
    "host",
    ["redis://chat-redis:6380", "redis://other:6379", "redis://chat-redis:6379/3"],
)
def test_another_redis_is_refused(host: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="CHANNELWORKS_REDIS_URL"):
        app_layer.default_layer_config(
            "default", RedisChannelLayer, {"hosts": [host]}, settings(APP), APP
        )


@pytest.mark.parametrize(
    "host", ["redis://chat-redis:6379", {"address": "redis://chat-redis/0"}, ("chat-redis", 6379)]
)
def test_the_same_redis_in_any_spelling_is_accepted(host: object) -> None:
    app_layer.default_layer_config(
        "default", RedisChannelLayer, {"hosts": [host]}, settings(APP), APP
    )


def test_a_wrong_variable_is_a_django_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="CHANNELWORKS_REDIS_MODE"):
        settings({"CHANNELWORKS_REDIS_MODE": "sideways"})


def test_a_layer_channels_built_first_is_replaced_by_one_with_the_apps_prefix(monkeypatch):
    from channels import layers as channels_layers
    from django.test import override_settings

    from channelworks import asgi

    monkeypatch.setenv("CHANNELWORKS_APP", "demo.liveblog")
    config = {"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}
    saved = asgi.channel_layers.set("default", None)
    try:
        with override_settings(CHANNEL_LAYERS=config):
            built_by_channels = channels_layers.get_channel_layer()  # CONFIG as written
            assert built_by_channels.config.prefix != "demo.liveblog"
            ours = asgi.channel_layers["default"].channel_layer
            assert ours.config.prefix == "demo.liveblog"
            assert channels_layers.get_channel_layer() is ours  # Channels 4 code gets it too
    finally:
        asgi.channel_layers.set("default", saved)
