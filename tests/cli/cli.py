"""The ``channelworks`` command as a user runs it: a real process of the workspace's console
script, with none of our variables from the test's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

COMMAND = str(Path(sys.executable).parent / "channelworks")
TIMEOUT = 180.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CHANNELWORKS_", "DJANGO_", "PYTHONPATH", "KUBECONFIG"))
        and name != "SOURCE_DATE_EPOCH"
    }
    env.update(extra)
    return env


def run(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def init(parent: Path, name: str) -> Path:
    """``channelworks init NAME`` in ``parent``; the new project's folder."""
    done = run("init", name, cwd=parent)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())
