"""Fixtures of the image tests: the images built once per session by scripts/build-images.sh.

The first build on a machine makes the Debian base with debootstrap and downloads the locked
wheels (a few minutes, cached in ~/.cache/channelworks/images); later builds reuse every layer.
Where no container engine exists the tests are skipped, saying so (pytest runs with ``-ra``).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Generator
from dataclasses import dataclass

import pytest

from tests.images import podman

ACTIVE: list[podman.Container] = []  # containers of the running test, for the failure report


@dataclass(frozen=True)
class Images:
    interface: str
    worker: str
    operator: str
    chat: str  # examples/chat on the worker image, as a project image is made
    build_seconds: float

    @property
    def platform(self) -> tuple[str, str, str]:
        return (self.interface, self.worker, self.operator)


def _version() -> str:
    with (podman.REPO_ROOT / "consumers_sdk" / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


@pytest.fixture(scope="session")
def images() -> Images:
    if podman.engine() is None:
        pytest.skip(
            "no container engine on this machine (podman): scripts/install-test-deps.sh "
            "installs podman, buildah, runc and debootstrap"
        )
    started = time.monotonic()
    podman.build_images("--example", "chat")
    tag = _version()
    return Images(
        interface=f"localhost/channelworks/interface:{tag}",
        worker=f"localhost/channelworks/worker:{tag}",
        operator=f"localhost/channelworks/operator:{tag}",
        chat=f"localhost/channelworks/example-chat:{tag}",
        build_seconds=time.monotonic() - started,
    )


@pytest.fixture
def containers() -> Generator[list[podman.Container], None, None]:
    """Containers the test starts go in this list; they are removed afterwards."""
    ACTIVE.clear()
    yield ACTIVE
    for container in ACTIVE:
        container.stop()
    ACTIVE.clear()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when == "call":
        for container in ACTIVE:
            report.sections.append((f"logs of {container.image}", container.logs()))
    return report
