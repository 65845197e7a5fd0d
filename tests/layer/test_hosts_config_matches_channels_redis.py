"""The CONFIG keys of channels_redis work unchanged: host forms, passwords, TLS, sharding."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trustme

from channelworks.exceptions import ConfigurationError
from channelworks.layers import RedisChannelLayer
from tests.support.eventually import eventually
from tests.support.redis_servers import RedisServer, free_port


def _start(args: list[str], tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """A redis-server with ``args``, once it accepts connections on ``port``."""
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp), *args],
        stdout=subprocess.DEVNULL,
    )

    def accepts() -> None:
        assert server.poll() is None, f"redis-server exited with {server.returncode}"
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

    eventually(accepts, timeout=20, message=f"redis-server on port {port}", retry_on=(OSError,))
    return server


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A TLS-only Redis with a password: (rediss URL, CA file)."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    authority.cert_pem.write_to_path(str(ca_file))
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    port = free_port()
    server = _start(
        [
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(cert_file),
            "--tls-key-file",
            str(key_file),
            "--tls-ca-cert-file",
            str(ca_file),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "s3cret",
        ],
        tmp_path,
        port,
    )
    yield f"rediss://:s3cret@127.0.0.1:{port}", str(ca_file)
    server.terminate()
    server.wait()


async def test_tls_and_password_from_a_rediss_url(tls_redis: tuple[str, str]) -> None:
    url, ca_file = tls_redis
    layer = RedisChannelLayer(hosts=[{"address": url, "ssl_ca_certs": ca_file}], prefix="tls")
    try:
        await layer.send("secure", {"over": "tls"})
        assert await asyncio.wait_for(layer.receive("secure"), 5) == {"over": "tls"}
    finally:
        await layer.close()


async def test_a_wrong_password_fails_at_once_without_retries() -> None:
    with RedisServer(requirepass="right") as server:
        layer = RedisChannelLayer(hosts=[f"redis://:wrong@127.0.0.1:{server.port}"])
        started = time.monotonic()
        try:
            with pytest.raises(redis.exceptions.AuthenticationError):
                await layer.send("anything", {"n": 1})
        finally:
            await layer.close()
    assert time.monotonic() - started < 3


async def test_host_port_pairs_and_urls_are_both_accepted(redis_url: str) -> None:
    parts = urllib.parse.urlsplit(redis_url)
    by_pair = RedisChannelLayer(hosts=[(parts.hostname, parts.port)], prefix="forms")
    by_url = RedisChannelLayer(hosts=[redis_url], prefix="forms")
    try:
        await by_pair.send("forms", {"via": "pair"})
        assert await asyncio.wait_for(by_url.receive("forms"), 5) == {"via": "pair"}
    finally:
        await by_pair.close()
        await by_url.close()


async def test_several_hosts_shard_the_keys(redis_url: str) -> None:
    with RedisServer() as second:
        hosts = [redis_url, second.url]
        layer = RedisChannelLayer(hosts=hosts, prefix="sharded", capacity=10_000)
        try:
            await asyncio.gather(
                *(layer.send("spread", {"reply_channel": f"c{n}", "n": n}) for n in range(400))
            )
            counts = [redis.Redis.from_url(url).dbsize() for url in hosts]
            received = [await layer.receive("spread") for _ in range(400)]
        finally:
            await layer.close()
    assert all(count > 0 for count in counts), counts
    assert sorted(m["n"] for m in received) == list(range(400))


@pytest.mark.parametrize(
    ("hosts", "problem"),
    [
        (["http://example:6379"], "unsupported Redis URL scheme 'http'"),
        ([("host",)], r"a hosts pair must be \(host, port\)"),
        ([], "hosts must name at least one Redis server"),
        ([{"password": "x"}], "needs an 'address' key"),
    ],
)
def test_bad_hosts_are_rejected_with_what_is_allowed(hosts: list[object], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        RedisChannelLayer(hosts=hosts)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"capacity": 0}, "capacity must be a positive number"),
        ({"expiry": -1}, "expiry must be a positive number"),
        ({"shards": 0}, "shards must be an integer from 1 to 1024"),
        ({"prefix": "a b"}, "prefix must be a non-empty string"),
        ({"capacty": 5}, r"unknown channel layer option\(s\) 'capacty'; allowed: prefix, expiry"),
        (
            {"symmetric_encryption_keys": ["secret"]},
            "'symmetric_encryption_keys' is not supported: encrypt at the transport instead",
        ),
    ],
)
def test_bad_settings_are_rejected(config: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        RedisChannelLayer(hosts=["redis://127.0.0.1:1"], **config)
