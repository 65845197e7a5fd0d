"""The shipped JavaScript client run under ``node`` (no browser): where it is, and a runner for
a short ES module program that prints one JSON line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import channelworks

SCRIPTS = Path(channelworks.__file__).parent / "static" / "channels" / "js"
MODULE = (SCRIPTS / "websocketbridge.mjs").as_uri()
CLASSIC = str(SCRIPTS / "websocketbridge.js")
NODE = shutil.which("node")

needs_node = pytest.mark.skipif(NODE is None, reason="needs node (apt-get install -y nodejs)")


def run_node(program: str, timeout: float = 60.0) -> object:
    """Run an ES module program under node; it prints one JSON line: return what it printed."""
    done = subprocess.run(
        [
            str(NODE),
            "--experimental-websocket",
            "--no-warnings",
            "--input-type=module",
            "-e",
            program,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
