"""``CHANNELWORKS_LAYER_SHARDS`` sets the layer's work shards in every process of an app (the
operator sets it from ``spec.channelLayer.workShards``): a real worker process with 64 shards
takes every message a 64-shard sender spread over them; a bad value stops it with the reason."""

from __future__ import annotations

import subprocess

import pytest

from channelworks.exceptions import ConfigurationError
from channelworks.layers import RedisChannelLayer
from channelworks.layers import env as layer_env
from tests.dataplane import processes
from tests.support.eventually import eventually_async
from tests.worker.misbehaving import misbehaving

ROUTING = "tests.worker.pools_app.routing.channel_routing"
MESSAGES = 128


async def test_a_worker_with_64_shards_takes_what_was_sent_over_64(redis_url, tmp_path):
    async with misbehaving(redis_url, tmp_path) as app:
        await app.layer.close()
        app.layer = RedisChannelLayer(hosts=[redis_url], prefix=app.prefix, shards=64)
        await app.start_worker(CHANNELWORKS_ROUTING=ROUTING, CHANNELWORKS_LAYER_SHARDS="64")
        for n in range(MESSAGES):
            await app.layer.send("chan.a", {"reply_channel": f"specific.t!{n}", "n": n})
        await eventually_async(
            lambda: len(app.lines("received")) >= MESSAGES, timeout=30, interval=0.2
        )
        taken = sorted(int(line.split()[2]) for line in app.lines("received"))
        assert taken == list(range(MESSAGES))
        shards = {app.layer.layout.shard_for("chan.a", f"specific.t!{n}") for n in range(MESSAGES)}
        assert max(shards) >= 16  # the messages really were on shards a 16-shard worker lacks


@pytest.mark.parametrize("raw", ["0", "1025", "many", "-3"])
def test_a_bad_shard_count_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        layer_env.tuning_from_env({"CHANNELWORKS_LAYER_SHARDS": raw})
    assert "CHANNELWORKS_LAYER_SHARDS must be a whole number from 1 to 1024" in str(raised.value)


def test_a_worker_given_a_bad_shard_count_exits_2(redis_url, tmp_path) -> None:
    env = processes.clean_env(
        CHANNELWORKS_APP="bad.shards",
        CHANNELWORKS_REDIS_MODE="standalone",
        CHANNELWORKS_REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="tests.worker.hardening_app.settings",
        PYTHONPATH=str(processes.REPO),
        CHANNELWORKS_LAYER_SHARDS="2000",
    )
    command = [str(processes.BIN / "channelworks-worker")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "CHANNELWORKS_LAYER_SHARDS must be a whole number from 1 to 1024" in result.stderr
