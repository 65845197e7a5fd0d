"""One reader of environment settings for every process (``channelworks.process.env``): the
interface, the worker, the operator and the layer's own variables give the same answer to the
same mistake, naming the variable, what is allowed and what was given. Before, each had its own
copy, and they disagreed (the worker said ``must be a int``; an infinite number passed one and
not another)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from channelworks.exceptions import ConfigurationError
from channelworks.layers import env as layer_env
from channelworks.process import env as readers
from channelworks_interface import config as interface_config
from channelworks_operator import config as operator_config
from channelworks_operator.exceptions import ConfigurationError as OperatorConfigurationError
from channelworks_worker import config as worker_config

WORKER_BASE = {"CHANNELWORKS_APP": "demo.chat", "CHANNELWORKS_REDIS_MODE": "memory",
               "DJANGO_SETTINGS_MODULE": "x.settings"}  # fmt: skip


@pytest.mark.parametrize(
    ("read", "raw", "words"),
    [
        (lambda env: readers.number(env, "X", 1.0, 0.5), "soon", "X must be a number, got 'soon'"),
        (lambda env: readers.number(env, "X", 1.0, 0.5), "inf", "X must be at least 0.5, got"),
        (lambda env: readers.number(env, "X", 1.0, 0, 10), "11", "X must be a number from 0 to 10"),
        (lambda env: readers.integer(env, "X", 1, 1), "1.5", "X must be a whole number, got '1.5'"),
        (lambda env: readers.integer(env, "X", 1, 1), "0", "X must be at least 1, got '0'"),
        (
            lambda env: readers.integer(env, "X", 1, 1, 9),
            "x",
            "X must be a whole number from 1 to 9",
        ),
        (lambda env: readers.port(env, "X", 80), "70000", "X must be a TCP port (0-65535)"),
        (
            lambda env: readers.flag(env, "X", False),
            "maybe",
            "X must be true or false, got 'maybe'",
        ),
        (lambda env: readers.choice(env, "X", "a", ("a", "b")), "c", "X must be one of a, b, got"),
    ],
)
def test_a_wrong_value_is_named_with_what_is_allowed(
    read: Callable[[dict[str, str]], object], raw: str, words: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        read({"X": raw})
    assert words in str(raised.value)


def test_unset_or_empty_means_the_default() -> None:
    assert readers.number({"X": " "}, "X", None) is None
    assert readers.integer({}, "X", 7) == 7
    assert readers.names({"X": "a, b,,c "}, "X") == ("a", "b", "c")


def test_every_process_answers_a_wrong_port_the_same_way() -> None:
    said = set()
    with pytest.raises(ConfigurationError) as interface:
        interface_config.load({"CHANNELWORKS_METRICS_PORT": "http"})
    said.add(str(interface.value))
    with pytest.raises(ConfigurationError) as worker:
        worker_config.from_env({**WORKER_BASE, "CHANNELWORKS_METRICS_PORT": "http"})
    said.add(str(worker.value))
    with pytest.raises(OperatorConfigurationError) as operator:
        operator_config.load({"CHANNELWORKS_OPERATOR_METRICS_PORT": "http"})
    said.add(str(operator.value).replace("CHANNELWORKS_OPERATOR_", "CHANNELWORKS_"))
    assert said == {"CHANNELWORKS_METRICS_PORT must be a TCP port (0-65535), got 'http'"}
    with pytest.raises(ConfigurationError, match="must be a number, got 'soon'"):
        layer_env.tuning_from_env({"CHANNELWORKS_REDIS_CONNECT_TIMEOUT": "soon"})


def test_a_redis_url_without_a_mode_means_one_redis_in_every_process() -> None:
    url_only = {**WORKER_BASE, "CHANNELWORKS_REDIS_URL": "redis://r:6379"}
    del url_only["CHANNELWORKS_REDIS_MODE"]
    modes = {
        "layer": layer_env.settings_from_env(url_only).mode,
        "interface": interface_config.load(url_only).layer.mode,
        "worker": worker_config.from_env(url_only).layer.mode,
    }
    assert modes == {"layer": "standalone", "interface": "standalone", "worker": "standalone"}
    assert layer_env.settings_from_env({}).mode == "memory"
