"""Layers and routing located from settings, as a ported Channels 1 project has them."""

import pytest
from channels import layers as channels_layers
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from channelworks import asgi, conf, exceptions, route, routing, testing
from channelworks.layers import InMemoryChannelLayer


def consumer(message):
    message.reply_channel.send({"text": "from settings routing"})


routing_for_tests = [route("custom.settings", consumer)]


@pytest.fixture
def fresh_registry():
    saved = asgi.channel_layers.set("default", None)
    conf.set_router("default", None)
    yield
    asgi.channel_layers.set("default", saved)
    conf.set_router("default", None)


CHANNELS_1_SETTINGS = {
    "CHANNEL_LAYERS": {
        "default": {
            "BACKEND": "channelworks.layers.InMemoryChannelLayer",
            "ROUTING": "tests.sdk.project.routing.channel_routing",
        }
    },
    "CHANNELWORKS": {},
}


@override_settings(**CHANNELS_1_SETTINGS)
def test_channel_layers_setting_with_channels_1_routing_key_builds_the_layer(fresh_registry):
    wrapper = asgi.channel_layers["default"]
    assert isinstance(wrapper.channel_layer, InMemoryChannelLayer)
    assert asgi.get_channel_layer() is wrapper.channel_layer
    # Channels 4 code in the same process gets the same layer, despite the ROUTING key.
    assert channels_layers.get_channel_layer() is wrapper.channel_layer
    assert "websocket.connect" in wrapper.router.channels
    assert wrapper.router.resolve("websocket.connect", {"path": "/whoami/"}).consumer.__name__ == (
        "whoami_connect"
    )


def test_channels_1_backend_names_map_to_channelworks_layers(fresh_registry):
    config = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "ROUTING": []}}
    with override_settings(CHANNEL_LAYERS=config):
        assert isinstance(asgi.get_channel_layer(), InMemoryChannelLayer)


def test_a_backend_that_is_not_a_channelworks_layer_is_refused(fresh_registry):
    config = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with (
        override_settings(CHANNEL_LAYERS=config),
        pytest.raises(ImproperlyConfigured, match="not a Channelworks layer"),
    ):
        asgi.channel_layers["default"]


def test_missing_layer_is_a_clear_error(fresh_registry):
    with override_settings(CHANNEL_LAYERS={}), pytest.raises(ImproperlyConfigured, match="BACKEND"):
        asgi.channel_layers["default"]


def test_channelworks_routing_setting_wins(fresh_registry):
    with override_settings(CHANNELWORKS={"ROUTING": f"{__name__}.routing_for_tests"}):
        router = conf.get_router()
        assert router.resolve("custom.settings", {}).consumer is consumer


def test_no_routing_anywhere_is_a_clear_error(fresh_registry):
    config = {"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}
    with (
        override_settings(CHANNEL_LAYERS=config, CHANNELWORKS={}),
        pytest.raises(ImproperlyConfigured, match="CHANNELWORKS"),
    ):
        conf.get_router()


def test_channels_1_sync_layer_api(layer):
    layer.send("custom.sync", {"a": 1})
    assert layer.receive_many(["custom.sync"]) == ("custom.sync", {"a": 1})
    assert layer.receive_many(["custom.sync"]) == (None, None)
    layer.group_add("g", "test.x!1")
    layer.send_group("g", {"b": 2})
    assert layer.receive_many(["test.x!1"], block=True) == ("test.x!1", {"b": 2})
    assert layer.new_channel("websocket.send!").startswith("websocket.send.")
    with pytest.raises(layer.ChannelFull):
        for n in range(1000):
            layer.send("custom.full", {"n": n})


def test_consume_later_puts_the_message_back(layer):
    attempts = []

    def flaky(message):
        attempts.append(message.get("__retries__", 0))
        if len(attempts) < 3:
            raise exceptions.ConsumeLater()

    client = testing.Client()
    with testing.apply_routes([route("custom.flaky", flaky)]):
        client.send_and_consume("custom.flaky", {})
        client.consume("custom.flaky")
        client.consume("custom.flaky")
    assert attempts == [0, 1, 2]
    assert client.get_next_message("custom.flaky") is None


def test_channel_socket_exception_answers_the_socket(layer):
    class Goodbye(exceptions.ChannelSocketException):
        def run(self, message):
            message.reply_channel.send({"close": 4000})

    def consumer(message):
        raise Goodbye()

    client = testing.Client()
    with testing.apply_routes([route("websocket.receive", consumer)]):
        client.send_and_consume("websocket.receive", {"text": "x"})
    assert client.receive() == {"close": 4000}


def test_unrouted_messages_fail_the_test_client_clearly(layer):
    client = testing.Client()
    with testing.apply_routes([route("custom.a", consumer, kind=r"^yes$")]):
        client.send("custom.a", {"kind": "no"})
        with pytest.raises(AssertionError, match="no route"):
            client.consume("custom.a")
        assert routing.Router([], defaults=False).channels == set()
