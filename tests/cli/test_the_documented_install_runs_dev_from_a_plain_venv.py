"""The install that docs/cli.md shows works outside the workspace: its commands, run as written
in a fresh ``python3 -m venv`` in a temporary folder, give a ``channelworks`` that makes a project
and serves it with ``channelworks dev``.

Only what the test cannot do as a user would is changed: the wheels go to a temporary ``dist/``
(not the repository's), the venv to a temporary folder, and pip reads the locked third-party
wheels from the wheelhouse of ``scripts/build-images.sh --wheelhouse-only`` (no network; downloaded
once per locked set into its cache) and skips compiling bytecode (time on a 2-core CI machine).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.cli import cli
from tests.dataplane import devmode, processes

REPO = processes.REPO
CLI_DOC = REPO / "docs" / "cli.md"
MARKER = "<!-- install-commands:"
INSTALL_SECONDS = 600


def documented_install_commands() -> list[str]:
    """The shell lines of the fenced block that follows the marker in docs/cli.md, without
    comments and blank lines."""
    text = CLI_DOC.read_text()
    after = text[text.index(MARKER) :]
    block = re.search(r"```sh\n(.*?)```", after, re.S)
    assert block is not None, "no ```sh block after the install-commands marker"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def test_the_documented_commands_are_the_ones_this_test_runs() -> None:
    assert documented_install_commands() == [
        "scripts/build-wheels.sh",
        "python3 -m venv ~/venvs/my-app",
        ". ~/venvs/my-app/bin/activate",
        "python -m pip install dist/*.whl",
        "channelworks --help",
    ]


def third_party_wheelhouse() -> Path:
    done = subprocess.run(
        [str(REPO / "scripts" / "build-images.sh"), "--wheelhouse-only"],
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return REPO / "build" / "images" / "wheels" / "third-party"


def test_the_documented_install_serves_a_new_project_with_dev(tmp_path: Path) -> None:
    venv = tmp_path / "venvs" / "my-app"
    script = "\n".join(
        line.replace(
            "scripts/build-wheels.sh", f"{REPO}/scripts/build-wheels.sh --out-dir dist"
        ).replace("~/venvs/my-app", str(venv))
        for line in documented_install_commands()
    )
    env = cli.clean_env(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(third_party_wheelhouse()),
        PIP_NO_COMPILE="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    # A plain venv knows nothing of the workspace's: no VIRTUAL_ENV, not its bin/ on PATH.
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        part
        for part in env.get("PATH", "").split(os.pathsep)
        if Path(part) != Path(sys.executable).parent
    )
    installed = subprocess.run(
        ["bash", "-euc", script],
        cwd=tmp_path,  # dist/ is this folder's: the wheels are built into it below
        env={**env, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = re.findall(r"^    (\w+) ", installed.stdout, re.M)  # channelworks --help
    assert listed == ["dev", "init", "build", "manifest", "status"], installed.stdout
    command = venv / "bin" / "channelworks"
    assert command.is_file()

    made = subprocess.run(
        [str(command), "init", "my_app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    project = Path(made.stdout.strip())
    assert f"next: cd {project} && channelworks dev" in made.stderr

    port = processes.free_port()
    argv = [str(command), "dev", "--port", str(port), "--no-reload"]
    with devmode.running("dev", argv, tmp_path, project, PATH=env["PATH"]) as dev:
        url = dev.wait_for_url()
        page = httpx.get(url, timeout=30)
        # The page's reconnecting client is the channelworks app's static file, in the wheel.
        script = re.search(r'<script src="([^"]+websocketbridge\.js)"', page.text)
        assert script is not None, page.text
        client = httpx.get(url.rstrip("/") + script.group(1), timeout=30)
        # What serves it runs on the plain venv's Python, not the workspace's.
        pythons = {child.cmdline()[0] for child in dev.descendants()}
    assert page.status_code == 200
    assert "<h1>my_app</h1>" in page.text
    assert client.status_code == 200 and "WebSocketBridge" in client.text
    assert pythons == {str(venv / "bin" / "python")}, pythons
