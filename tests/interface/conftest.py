"""Interface fixtures: real ``channelworks-interface`` processes on a real Redis, and a scripted
worker on the same layer in the test's event loop.

Starting an interface process takes seconds (importing Daphne and Twisted), so each test module
shares one with default settings (``interface``); tests that need other settings start their own
(``start_interface``). Redis is flushed before every test.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from channelworks.layers import InMemoryChannelLayer, RedisChannelLayer
from channelworks_interface.config import InterfaceConfig
from channelworks_interface.metrics import Metrics
from channelworks_interface.server import InterfaceServer
from tests.interface.support import InterfaceProcess
from tests.support import redis_servers
from tests.support.eventually import eventually

StartInterface = Callable[..., InterfaceProcess]


@pytest.fixture(scope="module")
def app_prefix() -> str:
    """The CHANNELWORKS_APP (layer key prefix) of this module's interfaces and workers."""
    return f"itest{secrets.token_hex(4)}"


def _launch(url: str, prefix: str, log: Path, env: dict[str, str]) -> InterfaceProcess:
    return InterfaceProcess(
        {
            "CHANNELWORKS_APP": prefix,
            "CHANNELWORKS_REDIS_MODE": "standalone",
            "CHANNELWORKS_REDIS_URL": url,
            "CHANNELWORKS_INTERFACE_DRAIN_DELAY": "0",
            "CHANNELWORKS_INTERFACE_DRAIN_WINDOW": "0.5",
            **env,
        },
        log,
    )


@pytest.fixture(scope="module")
def interface_env() -> dict[str, str]:
    """Settings of the module's shared interface; a test module overrides this to change them."""
    return {}


@pytest.fixture(scope="module")
def interface(
    redis_server: redis_servers.RedisServer,
    app_prefix: str,
    interface_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[InterfaceProcess]:
    """One interface process (settings from ``interface_env``), shared by a module's tests."""
    log = tmp_path_factory.mktemp("interface") / "interface.log"
    process = _launch(redis_server.url, app_prefix, log, interface_env)
    process.wait_ready()
    yield process
    process.stop()


@pytest.fixture
def start_interface(redis_url: str, app_prefix: str, tmp_path: Path) -> Iterator[StartInterface]:
    """Start interface processes with extra settings (ready when returned); stopped afterwards."""
    started: list[InterfaceProcess] = []

    def start(wait: bool = True, **env: str) -> InterfaceProcess:
        process = _launch(redis_url, app_prefix, tmp_path / f"interface-{len(started)}.log", env)
        started.append(process)
        if wait:
            process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
async def worker_layer(redis_url: str, app_prefix: str) -> AsyncIterator[RedisChannelLayer]:
    """The worker side's layer: same Redis, same prefix as the interface processes (and the
    database flushed before the test, by ``redis_url``)."""
    layer = RedisChannelLayer(hosts=[redis_url], prefix=app_prefix)
    yield layer
    await layer.close()


@dataclass
class InProcessInterface:
    """The interface's Daphne server running in a thread of the test process, on an in-memory
    layer the test's own worker shares."""

    server: InterfaceServer
    layer: InMemoryChannelLayer
    registry: CollectorRegistry

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.server.http_port}{path}"

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture(scope="session")
def inprocess_interface() -> Iterator[InProcessInterface]:
    """One per test process: Twisted's reactor cannot be started twice."""
    config = InterfaceConfig(
        host="127.0.0.1",
        port=0,
        metrics_host="127.0.0.1",
        metrics_port=0,
        connect_timeout=1.0,
        http_timeout=1.0,
        drain_delay=0.0,
        drain_window=0.2,
        grace_period=5.0,
    )
    layer = InMemoryChannelLayer(channel_capacity={"http.request": 5})
    registry = CollectorRegistry()
    server = InterfaceServer(config, layer, Metrics(registry))
    thread = threading.Thread(target=server.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    eventually(lambda: server.connections.ready and server.metrics_port, timeout=60)
    yield InProcessInterface(server, layer, registry)
    server.request_drain()
    thread.join(10)


@pytest.fixture
async def inprocess(inprocess_interface: InProcessInterface) -> AsyncIterator[InProcessInterface]:
    """The in-process interface, its layer emptied before and after the test."""
    await inprocess_interface.layer.flush()
    yield inprocess_interface
    await inprocess_interface.layer.flush()
