"""The install docs/cli.md shows, as a user's shell runs it outside the workspace: the commands
of its fenced blocks, a plain environment (not the workspace's venv, none of our variables,
installers reading the locked third-party wheels from a wheelhouse with no index) and a shell.

Used by the install test of tests/cli and by the new-project test of the real-node suite (e2e/),
which follow the same documented commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.cli import cli

REPO = Path(__file__).resolve().parents[2]
CLI_DOC = REPO / "docs" / "cli.md"
INSTALL_MARKER = "<!-- install-commands:"
GIT_MARKER = "<!-- git-install-commands:"
INSTALL_SECONDS = 600
THIRD_PARTY_WHEELHOUSE = REPO / "build" / "images" / "wheels" / "third-party"


def documented_commands(marker: str) -> list[str]:
    """The shell lines of the fenced block that follows ``marker`` in docs/cli.md, without
    comments and blank lines; a line ending in a backslash is joined with the next."""
    text = CLI_DOC.read_text()
    after = text[text.index(marker) :]
    block = re.search(r"```sh\n(.*?)```", after, re.S)
    assert block is not None, f"no ```sh block after {marker}"
    joined = re.sub(r"\\\n\s*", "", block.group(1))
    lines = [line.split(" #", 1)[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def plain_env(wheelhouse: Path) -> dict[str, str]:
    """A user's shell: none of our variables, not the workspace venv (no VIRTUAL_ENV, not its
    bin/ on PATH); pip and uv install from ``wheelhouse`` only, without compiling bytecode.

    Not compiling is ``PIP_COMPILE=0``: pip reads ``PIP_NO_COMPILE=1`` as ``--no-compile``'s
    store-false value, i.e. "compile", and compiled every module it installed (about 16 s of CPU
    per install of the four wheels, two thirds of the install)."""
    env = cli.clean_env(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheelhouse),
        PIP_COMPILE="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_FIND_LINKS=str(wheelhouse),
        UV_COMPILE_BYTECODE="0",
    )
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        part
        for part in env.get("PATH", "").split(os.pathsep)
        if Path(part) != Path(sys.executable).parent
    )
    return env


def shell(
    script: str, cwd: Path, env: Mapping[str, str], timeout: float = INSTALL_SECONDS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euc", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def in_a_clone(command: str) -> str:
    """``command`` as run in a clone's root, with the wheels going to this folder's dist/ (and
    uv building them with its usual index for the build backend)."""
    return command.replace(
        "scripts/build-wheels.sh",
        f"env -u UV_DEFAULT_INDEX {REPO}/scripts/build-wheels.sh --out-dir dist",
    )


def install_as_documented(folder: Path, venv: Path, env: Mapping[str, str]) -> str:
    """Run docs/cli.md's install from a clone with ``folder`` as the clone's root (the wheels go
    to its dist/) and ``venv`` as ``~/venvs/my-app``; the output of the commands (the last one is
    ``channelworks --help``)."""
    script = "\n".join(
        in_a_clone(line).replace("~/venvs/my-app", str(venv))
        for line in documented_commands(INSTALL_MARKER)
    )
    installed = shell(script, folder, {**env, "HOME": str(folder)})
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return installed.stdout


COMPILED = """import importlib.util, pathlib, sys
package, relative = sys.argv[1:]
found = importlib.util.find_spec(package)  # finds the package without importing it
source = pathlib.Path(found.origin).parent / relative
print(pathlib.Path(importlib.util.cache_from_source(str(source))).exists())
"""


def compiled(venv: Path, env: Mapping[str, str], package: str, relative: str) -> bool:
    """Whether ``venv``'s Python, in ``env``, has compiled bytecode of the file ``relative`` of the
    installed ``package`` where it looks for it (beside it, or under ``PYTHONPYCACHEPREFIX``)."""
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", COMPILED, package, relative],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip() == "True"


def listed_commands(help_text: str) -> list[str]:
    return re.findall(r"^    (\w+) ", help_text, re.M)  # channelworks --help
