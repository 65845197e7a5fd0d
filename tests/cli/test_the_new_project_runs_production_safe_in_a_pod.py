"""A project made by ``channelworks init``, run by real interface and worker processes on a real
redis-server with the environment a worker pod gets from the operator (``KUBERNETES_SERVICE_HOST``
as in every pod, ``DJANGO_SECRET_KEY`` from the operator's Secret, ``DJANGO_ALLOWED_HOSTS`` with
the Service's names, no ``DJANGO_DEBUG``): DEBUG is off, only the allowed hosts are served, and
without a secret key the worker refuses to start instead of using the key written in the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli import cli
from tests.dataplane import processes
from tests.support.eventually import eventually
from tests.support.redis_servers import RedisServer

SERVICE = "shop-live-interface"


@pytest.fixture
def pod_env(tmp_path: Path, redis_server: RedisServer) -> dict[str, str]:
    project = cli.init(tmp_path, "shop_live")
    return processes.clean_env(
        CHANNELWORKS_APP="shop-live",
        CHANNELWORKS_REDIS_MODE="standalone",
        CHANNELWORKS_REDIS_URL=redis_server.url,
        CHANNELWORKS_LOG_FORMAT="text",
        CHANNELWORKS_DRAIN_SECONDS="2",
        DJANGO_SETTINGS_MODULE="shop_live.settings",
        PYTHONPATH=str(project),
        KUBERNETES_SERVICE_HOST="10.96.0.1",
        DJANGO_SECRET_KEY="from-the-operators-secret",
        DJANGO_ALLOWED_HOSTS=f"{SERVICE},{SERVICE}.demo",
    )


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[processes.Served]]:
    running: list[processes.Served] = []
    yield running
    for process in running:
        process.stop()


def test_debug_is_off_and_only_the_services_names_are_served(
    pod_env: dict[str, str], tmp_path: Path, started: list[processes.Served]
) -> None:
    worker = processes.Worker("worker", pod_env, tmp_path, Path(pod_env["PYTHONPATH"]))
    interface = processes.Interface("interface", pod_env, tmp_path)
    started += [interface, worker]
    eventually(lambda: worker.ready() and interface.ready(), timeout=processes.READY_SECONDS)

    with httpx.Client(base_url=interface.base_url, timeout=30) as client:
        page = client.get("/", headers={"Host": SERVICE})
        qualified = client.get("/", headers={"Host": f"{SERVICE}.demo"})
        elsewhere = client.get("/", headers={"Host": "attacker.example"})
        missing = client.get("/no-such-page/", headers={"Host": SERVICE})
    assert page.status_code == 200 and "websocketbridge.js" in page.text
    assert qualified.status_code == 200
    assert elsewhere.status_code == 400  # DisallowedHost
    assert missing.status_code == 404
    # Not DEBUG's technical page, which lists the URL patterns and settings.
    assert "URLconf" not in missing.text and "shop_live.urls" not in missing.text


def test_without_a_secret_key_the_worker_does_not_start(
    pod_env: dict[str, str], tmp_path: Path, started: list[processes.Served]
) -> None:
    env = {name: value for name, value in pod_env.items() if name != "DJANGO_SECRET_KEY"}
    worker = processes.Worker("worker", env, tmp_path, Path(env["PYTHONPATH"]))
    started.append(worker)
    code = processes.wait_for_exit(worker, timeout=processes.READY_SECONDS)
    assert code != 0
    assert "DJANGO_SECRET_KEY is not set" in worker.log(), worker.log()
