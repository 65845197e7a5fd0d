"""Running the built images with podman, as the tests need them (no mocks: real containers).

This machine needs two things of podman that are said once here: the runc OCI runtime (crun
cannot set the containers' rlimits here), and explicit ``nofile``/``nproc`` limits. Containers use
the host's network, so they reach the test's Redis on 127.0.0.1 and the test reaches them there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-images.sh"
RUNTIME = os.environ.get("CHANNELWORKS_OCI_RUNTIME", "runc")
RUN_FLAGS = (
    "--runtime",
    RUNTIME,
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=32768:32768",
)


def engine() -> str | None:
    """The podman binary, or None when this machine has no container engine."""
    return shutil.which("podman")


def build_images(*arguments: str, timeout: float = 1500) -> str:
    """Run scripts/build-images.sh (what a user runs); return its output, raise with it on error."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise AssertionError(f"scripts/build-images.sh failed ({done.returncode}):\n{output}")
    return output


def podman(*arguments: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(
        ["podman", *arguments], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(arguments)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def image_config(image: str) -> dict[str, Any]:
    """The image's config (User, Entrypoint, Env, ExposedPorts...) and its size in bytes."""
    inspected = json.loads(podman("image", "inspect", image))[0]
    return {**inspected["Config"], "Size": inspected["Size"]}


def run_once(
    image: str,
    *command: str,
    entrypoint: str | None = None,
    env: dict[str, str] | None = None,
    volume: str | None = None,
) -> str:
    """Run a container to completion on a read-only root filesystem; return its output."""
    flags = [*RUN_FLAGS, "--rm", "--read-only", "--network", "none"]
    if entrypoint is not None:
        flags += ["--entrypoint", entrypoint]
    flags += _options(env=env, volume=volume)
    return podman("run", *flags, image, *command, timeout=180)


def _options(env: dict[str, str] | None = None, volume: str | None = None) -> list[str]:
    flags: list[str] = []
    for name, value in (env or {}).items():
        flags += ["--env", f"{name}={value}"]
    if volume is not None:
        flags += ["--volume", volume]
    return flags


@dataclass
class Container:
    """A detached container on the host network; ``stop()`` removes it."""

    image: str
    name: str = field(default_factory=lambda: f"channelworks-test-{uuid.uuid4().hex[:10]}")

    def start(self, env: dict[str, str], volume: str | None = None) -> Container:
        podman(
            "run",
            *RUN_FLAGS,
            "--detach",
            "--read-only",
            "--network",
            "host",
            "--name",
            self.name,
            *_options(env=env, volume=volume),
            self.image,
        )
        return self

    def exec(self, *command: str) -> str:
        return podman("exec", self.name, *command)

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.strip() == "true"

    def logs(self) -> str:
        """The container's output (stdout and stderr), the last 6,000 characters."""
        done = subprocess.run(
            ["podman", "logs", self.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout[-6000:]

    def stop(self) -> None:
        podman("rm", "--force", "--time", "5", self.name, check=False, timeout=60)


def sizes_in_megabytes(images: Sequence[str]) -> dict[str, float]:
    return {image: float(image_config(image)["Size"]) / 1e6 for image in images}
