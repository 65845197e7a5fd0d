"""``channelworks build`` hands the context to a real container engine: podman here (with the
runc runtime this machine needs, given with ``--engine-arg``), and the image it makes holds the
project in /app, importable by the worker as it is, with no network.

Without any engine the command says so, after the check and with the context written."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from channelworks.deploy import engines
from tests.cli import cli
from tests.images import podman
from tests.support.redis_servers import free_port

BASE = f"localhost/channelworks/worker:{metadata.version('channelworks')}"


def usable_engine() -> str | None:
    for name in ("podman", "buildah"):
        if shutil.which(name):
            return name
    docker = shutil.which("docker")
    return "docker" if docker and engines.docker_daemon_answers(docker) else None


@pytest.fixture(scope="module")
def worker_base() -> str:
    """The worker base image, built by scripts/build-images.sh when it is not there yet."""
    if podman.engine() is None:
        pytest.skip("podman is not installed (scripts/install-test-deps.sh installs it)")
    exists = subprocess.run(["podman", "image", "exists", BASE], check=False)
    if exists.returncode != 0:
        podman.build_images("--images", "worker")
    return BASE


def test_a_project_becomes_an_image_the_worker_runs(worker_base: str, tmp_path: Path) -> None:
    project = cli.init(tmp_path, "bulletin")
    tag = "localhost/channelworks-tests/bulletin-worker:1"
    done = cli.run(
        "build", "--base", worker_base, "--tag", tag, "--engine", "podman",
        f"--engine-arg=--runtime={podman.RUNTIME}", "--engine-arg=--network=none",
        cwd=project,
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr[-4000:]
        assert done.stdout.strip() == tag
        config = podman.image_config(tag)
        assert config["User"] == "10001:10001"
        assert "DJANGO_SETTINGS_MODULE=bulletin.settings" in config["Env"]  # type: ignore[operator]
        assert config["Entrypoint"] == ["channelworks-worker"]
        probe = podman.run_once(
            tag, "-m", "channelworks.deploy.import_probe", "/dev/stdout", "/app",
            "bulletin.settings", entrypoint="python",
        )  # fmt: skip
        result = json.loads(probe.strip().splitlines()[-1])
        assert result["ok"], result
        assert result["routing"] == "bulletin.routing.channel_routing"
        # collectstatic ran in the build: the worker serves these without DEBUG.
        script = "/app/staticfiles/channels/js/websocketbridge.js"
        check = f"import pathlib; print(pathlib.Path({script!r}).is_file())"
        found = podman.run_once(tag, "-c", check, entrypoint="python")
        assert found.strip().splitlines()[-1] == "True"
    finally:
        podman.podman("rmi", "--force", tag, check=False)


def test_the_image_build_makes_by_default_is_the_one_manifest_names(
    worker_base: str, tmp_path: Path
) -> None:
    """Without --tag and --image: the manifest's image is a name the engine stored the build
    under, as written (podman stores a bare name under localhost/, which Kubernetes would read as
    docker.io/library/...), and the pods do not try to pull it from a registry."""
    project = cli.init(tmp_path, "noticeboard")
    done = cli.run(
        "build", "--base", worker_base, "--engine", "podman",
        f"--engine-arg=--runtime={podman.RUNTIME}", "--engine-arg=--network=none",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    built = done.stdout.strip()
    printed = cli.run("manifest", cwd=project)
    assert printed.returncode == 0, printed.stderr
    app = next(d for d in yaml.safe_load_all(printed.stdout) if d and d["kind"] == "RealtimeApp")
    stored = podman.podman("image", "inspect", "--format", "{{json .RepoTags}}", built)
    assert app["spec"]["image"] == built
    assert app["spec"]["image"] in json.loads(stored), stored
    assert app["spec"]["imagePullPolicy"] == "IfNotPresent"


def test_a_push_that_fails_is_reported_after_the_build(worker_base: str, tmp_path: Path) -> None:
    project = cli.init(tmp_path, "bulletin")
    nowhere = f"127.0.0.1:{free_port()}"  # no registry listens there
    tag = f"{nowhere}/bulletin-worker:1"
    done = cli.run(
        "build", "--base", worker_base, "--tag", tag, "--push", "--push-arg=--tls-verify=false",
        f"--engine-arg=--runtime={podman.RUNTIME}", "--engine-arg=--network=none",
        cwd=project,
    )  # fmt: skip
    try:
        assert done.returncode == 1
        assert f"channelworks build: pushing {tag}" in done.stderr
        assert "channelworks build: podman push failed (exit code" in done.stderr
        assert done.stdout == ""  # no image reference printed: the push did not happen
        assert subprocess.run(["podman", "image", "exists", tag], check=False).returncode == 0
    finally:
        podman.podman("rmi", "--force", tag, check=False)


def test_without_an_engine_the_build_says_what_to_do(tmp_path: Path) -> None:
    found = usable_engine()
    if found is not None:
        pytest.skip(f"{found} can build here, so the real build tests above run instead")
    project = cli.init(tmp_path, "bulletin")
    done = cli.run("build", cwd=project)
    assert done.returncode == 1
    assert "channelworks build: no container engine to build with" in done.stderr
    assert "--context-only" in done.stderr
    if shutil.which("docker"):
        assert "docker is installed but its daemon does not answer" in done.stderr
    assert (project / ".channelworks" / "build" / "Dockerfile").is_file()
    asked = cli.run("build", "--engine", "buildah", cwd=project)
    assert asked.returncode == 1
    assert "--engine buildah: buildah is not installed" in asked.stderr
