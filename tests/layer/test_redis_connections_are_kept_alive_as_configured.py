"""Every Redis connection of the layer has TCP keepalive at ``keepalive_seconds``; bad socket
settings are refused by name.

A connection to a pod that vanished is never closed by the other side: without keepalive (or
with the kernel's two hours) an idle one would be believed alive for ever. ``ss`` shows each
socket's keepalive timer, so the test reads what the kernel was told, on real connections.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from channelworks.exceptions import ConfigurationError
from channelworks.layers import RedisChannelLayer
from channelworks.layers.env import tuning_from_env
from tests.support import redis_servers
from tests.support.eventually import eventually_async

KEEPALIVE = 7


def _our_connections(ports: set[int]) -> list[str]:
    """``ss`` lines of this process's established TCP connections to ``ports``."""
    listing = subprocess.run(
        ["ss", "-tnoHp", "state", "established"], capture_output=True, text=True, check=True
    ).stdout
    return [
        line
        for line in listing.splitlines()
        if f"pid={os.getpid()}," in line and int(line.split()[3].rsplit(":", 1)[1]) in ports
    ]


def _seconds(shown: str) -> float:
    """A timer as ``ss`` shows it: ``1min2sec``, ``30sec``, ``6.852ms`` (6.852 s), ``164ms``."""
    minutes, _, rest = shown.rpartition("min")
    total = 60.0 * int(minutes or 0)
    if rest.endswith("sec"):
        return total + int(rest[:-3])
    if rest.endswith("ms"):
        whole, dot, millis = rest[:-2].rpartition(".")
        return total + (int(whole) + int(millis) / 1000 if dot else int(millis) / 1000)
    return total


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed")
@pytest.mark.parametrize("mode", ["standalone", "cluster"])
async def test_every_connection_has_keepalive_at_the_configured_interval(
    mode: str,
    redis_server: redis_servers.RedisServer,
    redis_cluster: redis_servers.RedisClusterNodes,
) -> None:
    if mode == "standalone":
        hosts, ports = [redis_server.url], {redis_server.port}
    else:
        hosts, ports = redis_cluster.urls, {port for _, port in redis_cluster.startup_nodes}
    layer = RedisChannelLayer(hosts=hosts, prefix="keepalive", keepalive_seconds=KEEPALIVE)
    try:
        reply_channel = await layer.new_channel()
        await layer.send(reply_channel, {"n": 1})
        assert await layer.receive(reply_channel) == {"n": 1}
        await layer.send("work", {"n": 2})
        assert await layer.receive("work") == {"n": 2}

        def idle_timers() -> list[str]:
            lines = _our_connections(ports)
            assert len(lines) >= 3, lines  # batches, the inbox read, the stream reads
            timers = [re.search(r"timer:\((\w+),([\d.]+)(m?s)", line) for line in lines]
            assert all(timer is not None for timer in timers), lines  # no keepalive: no timer
            return lines

        lines = await eventually_async(idle_timers, timeout=5)
        keepalive = [
            _seconds(match.group(1))
            for match in (re.search(r"timer:\(keepalive,([^,]+),", line) for line in lines)
            if match is not None
        ]
        assert keepalive, lines
        assert max(keepalive) <= KEEPALIVE, lines
    finally:
        await layer.close()


@pytest.mark.parametrize(
    "options", [{"connect_timeout": 0}, {"keepalive_seconds": -1}, {"connect_timeout": "1"}]
)
def test_bad_socket_settings_are_refused_by_name(options: dict[str, object]) -> None:
    (name,) = options
    with pytest.raises(ConfigurationError, match=name):
        RedisChannelLayer(hosts=["redis://127.0.0.1:1"], **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "variable",
    [
        "CHANNELWORKS_REDIS_CONNECT_TIMEOUT",
        "CHANNELWORKS_REDIS_KEEPALIVE_SECONDS",
        "CHANNELWORKS_READINESS_GRACE_SECONDS",
    ],
)
def test_bad_environment_values_name_their_variable(variable: str) -> None:
    for value in ("soon", "-1", "inf"):
        with pytest.raises(ConfigurationError, match=variable):
            tuning_from_env({variable: value})
    assert tuning_from_env({}).connect_timeout == 1.0
