"""``CHANNELWORKS["GROUP_HISTORY"]`` reaches every layer this process installs; a wrong value is
refused with a message naming the key and what is allowed; a backend that keeps no history
(the in-memory and local layers of ``channelworks dev``) says so once, and works on as Channels."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from channelworks import asgi
from channelworks.layers import InMemoryChannelLayer, history


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    saved = asgi.channel_layers.set("default", None)
    yield
    asgi.channel_layers.set("default", saved)


def test_the_setting_reaches_the_installed_layer(fresh_registry: None) -> None:
    setting = {"GROUP_HISTORY": {"liveblog": 300, "room-*": {"size": 10, "ttl": 5}}}
    with override_settings(CHANNELWORKS=setting):
        layer = InMemoryChannelLayer()
        asgi.channel_layers.set("default", layer)
    assert layer.history_policy.rule_for("liveblog") == history.HistoryRule(300, 300.0)
    assert layer.history_policy.rule_for("room-7") == history.HistoryRule(10, 5.0)
    assert layer.history_policy.rule_for("other") is None


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"GROUP_HISTORY": ["liveblog"]}, "must be a dict"),
        ({"GROUP_HISTORY": {"liveblog": 0}}, "from 1 to 100000"),
        ({"GROUP_HISTORY": {"liveblog": {"ttl": 5}}}, "'size' (required)"),
        ({"GROUP_HISTORY": {"liveblog": 3}, "GROUP_HISTORY_TTL": 0}, "GROUP_HISTORY_TTL"),
    ],
)
def test_a_wrong_value_is_refused_with_what_is_allowed(
    fresh_registry: None, setting: dict[str, object], says: str
) -> None:
    with override_settings(CHANNELWORKS=setting), pytest.raises(ImproperlyConfigured) as error:
        asgi.channel_layers.set("default", InMemoryChannelLayer())
    assert says in str(error.value)


def test_a_backend_without_history_says_so(
    fresh_registry: None, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        override_settings(CHANNELWORKS={"GROUP_HISTORY": {"liveblog": 3}}),
        caplog.at_level(logging.WARNING, logger="channelworks.asgi"),
    ):
        asgi.channel_layers.set("default", InMemoryChannelLayer())
    assert "keeps no history" in caplog.text and "InMemoryChannelLayer" in caplog.text
