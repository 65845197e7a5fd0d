"""The container engine that builds and pushes a worker image: docker, podman or buildah.

:func:`choose` finds one (or checks the one asked for); :func:`build_command` and
:func:`push_command` are pure; :func:`run` runs a command with its output on the terminal.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from channelworks.exceptions import BuildError

ENGINES = ("docker", "podman", "buildah")  # the order ``auto`` tries them in
AUTO = "auto"
DAEMON_CHECK_SECONDS = 15.0

Which = Callable[[str], str | None]


@dataclass(frozen=True)
class Engine:
    name: str  # docker | podman | buildah
    program: str  # its path


def docker_daemon_answers(program: str) -> bool:
    """Whether the docker client reaches a daemon (an installed client alone cannot build)."""
    try:
        done = subprocess.run(
            [program, "version", "--format", "{{.Server.Version}}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=DAEMON_CHECK_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def choose(
    wanted: str,
    *,
    which: Which = shutil.which,
    docker_usable: Callable[[str], bool] = docker_daemon_answers,
) -> Engine:
    """The engine named by ``wanted``, or with ``auto`` the first of docker (when its daemon
    answers), podman and buildah that is installed."""
    if wanted != AUTO:
        if wanted not in ENGINES:
            raise BuildError(f"--engine must be one of {AUTO}, {', '.join(ENGINES)}; got {wanted}")
        program = which(wanted)
        if program is None:
            raise BuildError(f"--engine {wanted}: {wanted} is not installed (not on PATH)")
        return Engine(wanted, program)
    docker_without_daemon = False
    for name in ENGINES:
        program = which(name)
        if program is None:
            continue
        if name == "docker" and not docker_usable(program):
            docker_without_daemon = True
            continue
        return Engine(name, program)
    hint = " (docker is installed but its daemon does not answer)" if docker_without_daemon else ""
    raise BuildError(
        f"no container engine to build with{hint}: install docker, podman or buildah, or write "
        "the build context with --context-only and build it elsewhere"
    )


def build_command(
    engine: Engine, *, context: Path, dockerfile: Path, tag: str, extra: Sequence[str] = ()
) -> list[str]:
    """``<engine> build --file F --tag T [extra...] CONTEXT`` (the same form for all three)."""
    return [engine.program, "build", "--file", str(dockerfile), "--tag", tag, *extra, str(context)]


def push_command(engine: Engine, tag: str, extra: Sequence[str] = ()) -> list[str]:
    return [engine.program, "push", *extra, tag]


def run(command: Sequence[str], what: str) -> None:
    """Run ``command`` with all its output on this process's stderr (stdout is kept for the
    result); :class:`BuildError` when it fails."""
    try:
        code = subprocess.run(
            list(command), stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False
        ).returncode
    except OSError as error:
        raise BuildError(f"could not run {command[0]}: {error}") from None
    if code != 0:
        raise BuildError(f"{what} failed (exit code {code}); the engine's output is above")
