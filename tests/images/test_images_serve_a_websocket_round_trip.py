"""The three images, built from the Dockerfiles by scripts/build-images.sh on a Debian base made
with debootstrap, really run: a containerised interface and a containerised worker (the chat
example on the worker image) carry a chat between two browsers' WebSockets through a real Redis.
The images follow the contract: non-root, read-only root filesystem, no compiler, a sane size."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from tests.dataplane import clients
from tests.images import podman
from tests.images.conftest import Images
from tests.support.redis_servers import free_port

pytestmark = pytest.mark.timeout(1800)  # the first build on a machine takes a few minutes

# What a person would call too big for what is inside: the Debian base with python3 is ~130 MB.
MAX_MEGABYTES = {"interface": 300, "worker": 250, "operator": 400}
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "make", "ld")


def _layer_env(redis_url: str, metrics_port: int) -> dict[str, str]:
    return {
        "CHANNELWORKS_APP": "images-test.chat",
        "CHANNELWORKS_REDIS_MODE": "standalone",
        "CHANNELWORKS_REDIS_URL": redis_url,
        "CHANNELWORKS_METRICS_PORT": str(metrics_port),
        "CHANNELWORKS_LOG_FORMAT": "text",
    }


def _prepare_chat_database(images: Images, state: Path) -> str:
    """Migrate and seed the chat example's sqlite database with the example image itself."""
    state.mkdir()
    os.chmod(state, 0o777)  # the container's uid 10001 writes the database there
    volume = f"{state}:/state"
    env = {"CHANNELWORKS_STATE_DIR": "/state"}
    podman.run_once(
        images.chat, "manage.py", "migrate", "-v", "0", entrypoint="python", env=env, volume=volume
    )
    podman.run_once(
        images.chat, "manage.py", "seed_demo", entrypoint="python", env=env, volume=volume
    )
    return volume


async def _ready(metrics_port: int, container: podman.Container) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(240):
            assert container.running(), f"{container.image} stopped:\n{container.logs()}"
            try:
                answer = await client.get(f"http://127.0.0.1:{metrics_port}/readyz")
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError(f"{container.image} never became ready:\n{container.logs()}")


async def test_a_chat_message_goes_through_the_containerised_interface_and_worker(
    images: Images, redis_url: str, tmp_path: Path, containers: list[podman.Container]
) -> None:
    volume = _prepare_chat_database(images, tmp_path / "state")
    state_env = {"CHANNELWORKS_STATE_DIR": "/state"}
    worker_metrics, interface_metrics, port = free_port(), free_port(), free_port()

    worker = podman.Container(images.chat)
    containers.append(worker)
    worker.start({**_layer_env(redis_url, worker_metrics), **state_env}, volume=volume)
    interface = podman.Container(images.interface)
    containers.append(interface)
    interface.start({**_layer_env(redis_url, interface_metrics), "PORT": str(port)})
    await _ready(worker_metrics, worker)
    await _ready(interface_metrics, interface)

    base_url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/chat/stream/"
    async with asyncio.timeout(90):
        alice, hello = await clients.open_chat(ws_url, await clients.login(base_url, "alice"))
        bob, _ = await clients.open_chat(ws_url, await clients.login(base_url, "bob"))
        assert hello["hello"] == "alice"
        await clients.join(alice, "lobby")
        await clients.join(bob, "lobby")
        await alice.send({"command": "send", "room": "lobby", "message": "hello from a container"})
        said, _ = await bob.recv_until(lambda frame: "message" in frame)
        assert (said["user"], said["message"]) == ("alice", "hello from a container")
        echoed, _ = await alice.recv_until(lambda frame: "message" in frame)
        assert echoed["id"] == said["id"]
        await alice.close()
        await bob.close()

    # The processes serving that chat ran as the image's non-root user.
    assert worker.exec("id", "-u").strip() == "10001"
    assert interface.exec("id", "-u").strip() == "10001"


def test_images_run_as_non_root_with_the_contract_entry_points(images: Images) -> None:
    expected = {
        images.interface: ("10001:10001", ["channelworks-interface"], {"8000/tcp", "9100/tcp"}),
        images.worker: ("10001:10001", ["channelworks-worker"], {"9100/tcp"}),
        images.operator: ("65532:65532", ["channelworks-operator"], {"8080/tcp", "8081/tcp"}),
    }
    for image, (user, entrypoint, ports) in expected.items():
        config = podman.image_config(image)
        assert (config["User"], config["Entrypoint"]) == (user, entrypoint), image
        assert set(dict(config.get("ExposedPorts") or {})) == ports, image
        uid = podman.run_once(image, "-c", "import os; print(os.getuid())", entrypoint="python")
        assert uid.strip() == user.split(":")[0], image
    # A project image adds a layer to the worker image and keeps everything else.
    chat = podman.image_config(images.chat)
    assert (chat["User"], chat["Entrypoint"]) == ("10001:10001", ["channelworks-worker"])
    assert "DJANGO_SETTINGS_MODULE=chat.settings" in chat["Env"]


def test_the_operator_image_starts_its_entry_point(images: Images) -> None:
    usage = podman.run_once(images.operator, "--help")
    assert "channelworks-operator" in usage


def test_final_images_hold_no_compiler(images: Images) -> None:
    probe = f"import shutil; print([c for c in {COMPILERS!r} if shutil.which(c)])"
    for image in images.platform:
        found = podman.run_once(image, "-c", probe, entrypoint="python").strip()
        assert found == "[]", f"{image} has build tools: {found}"


def test_image_sizes_are_reasonable(images: Images, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = podman.sizes_in_megabytes(images.platform)
    with capsys.disabled():
        print(f"\nimages built (or found cached) in {images.build_seconds:.0f} s")
        for image, megabytes in sizes.items():
            print(f"  {image}: {megabytes:.0f} MB")
    for limit, image in zip(MAX_MEGABYTES.values(), images.platform, strict=True):
        assert sizes[image] <= limit, f"{image} is {sizes[image]:.0f} MB, more than {limit} MB"
