"""The Redis the operator runs has a memory ceiling under its container's limit and a policy
that refuses writes when full: the channel layer raises, it never loses keys to eviction
(the redis-server here runs the configuration and arguments the operator's builders write)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis

from channelworks.layers import RedisChannelLayer
from channelworks_operator import spec
from channelworks_operator.builders import redis as redis_builders
from tests.operator import samples
from tests.support.processes import free_port

PASSWORD = "not-a-secret"
MESSAGE = "x" * 100_000


def test_default_resources_give_redis_a_memory_ceiling() -> None:
    app = spec.parse(samples.app_body(spec_fields={"channelLayer": {"redis": {}}}))
    sts = redis_builders.stateful_set(app, samples.context(redis_password=PASSWORD))
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "256Mi"
    args = container["args"]
    assert args[args.index("--maxmemory") + 1] == str(int(256 * 2**20 * 0.75))
    assert "maxmemory-policy noeviction" in redis_builders.config_map(app)["data"]["redis.conf"]


async def test_a_full_redis_makes_sends_fail_and_keeps_every_message(tmp_path: Path) -> None:
    limits = {"redis": {"mode": "standalone", "resources": {"limits": {"memory": "16Mi"}}}}
    app = spec.parse(samples.app_body(spec_fields={"channelLayer": limits}))
    sts = redis_builders.stateful_set(app, samples.context(redis_password=PASSWORD))
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    port = free_port()
    config = redis_builders.config_map(app)["data"]["redis.conf"]
    config = config.replace("port 6379", f"port {port}").replace("dir /data", f"dir {tmp_path}")
    config = config.replace("bind * -::*", "bind 127.0.0.1")
    (tmp_path / "redis.conf").write_text(config)
    command = [
        "redis-server",
        str(tmp_path / "redis.conf"),
        *(arg.replace("$(REDIS_PASSWORD)", PASSWORD) for arg in args[1:]),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=PASSWORD)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        layer = RedisChannelLayer(
            hosts=[f"redis://:{PASSWORD}@127.0.0.1:{port}/0"], prefix="full", capacity=100_000
        )
        sent = 0
        with pytest.raises(redis.ResponseError, match="used memory > 'maxmemory'"):
            for _ in range(1000):  # 100 MB: far more than the 12 MB allowed
                await layer.send("work", {"n": sent, "text": MESSAGE})
                sent += 1
        assert 50 < sent < 200, sent
        assert int(client.info("stats")["evicted_keys"]) == 0
        received = set()
        for _ in range(sent):
            found = await layer.receive_many(["work"], timeout=5)
            assert found is not None
            received.add(found[1]["n"])
        assert received == set(range(sent))
        await layer.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
