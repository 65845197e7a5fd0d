"""tools/go-build.sh, which tools/kube/build-binaries.sh, tests/chart/build-promtool.sh and
bench/centrifugo/build.sh share: a command is built into its cache directory once and stamped
with what it was built from; a later run with the same stamp builds nothing, a new stamp or a
missing binary builds it again. Proved with a real `go install` of a one-file module."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "tools" / "go-build.sh"
SCRIPTS = (
    ROOT / "tools" / "kube" / "build-binaries.sh",
    ROOT / "tests" / "chart" / "build-promtool.sh",
    ROOT / "bench" / "centrifugo" / "build.sh",
)
MAIN = """package main

import "fmt"

var version = "unset"

func main() { fmt.Println("hello", version) }
"""
# Build the module in the current folder into $BIN unless $BIN/hello is stamped $STAMP.
BUILD = """
set -euo pipefail
source "$HELPER"
go_build_stamped "hello $STAMP" "$BIN" "$STAMP" hello -- \\
    go_build_install "$BIN" -ldflags="-X 'main.version=$STAMP'" .
"""


@pytest.fixture
def module(tmp_path: Path) -> Path:
    folder = tmp_path / "hello"
    folder.mkdir()
    (folder / "go.mod").write_text("module example.local/hello\n\ngo 1.22\n")
    (folder / "main.go").write_text(MAIN)
    return folder


def build(module: Path, bin_dir: Path, stamp: str) -> str:
    env = {
        **os.environ,
        "HELPER": str(HELPER),
        "BIN": str(bin_dir),
        "STAMP": stamp,
        "GOPROXY": "off",  # a module of the standard library only: nothing to fetch
        "GOFLAGS": "-buildvcs=false",
    }
    done = subprocess.run(
        ["bash", "-c", BUILD],
        cwd=module,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def run(binary: Path) -> str:
    return subprocess.run([binary], capture_output=True, text=True, check=True).stdout.strip()


def test_a_command_is_built_once_and_stamped(module: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "cache" / "hello" / "v1" / "bin"
    said = build(module, bin_dir, "v1 tags-a")

    assert "hello v1 tags-a: building into" in said
    assert run(bin_dir / "hello") == "hello v1 tags-a"
    assert (bin_dir / ".stamp-hello").read_text() == "v1 tags-a\n"

    built = (bin_dir / "hello").stat()
    said = build(module, bin_dir, "v1 tags-a")
    assert said == f"hello v1 tags-a: cached in {bin_dir}\n"
    again = (bin_dir / "hello").stat()
    assert (again.st_ino, again.st_mtime_ns) == (built.st_ino, built.st_mtime_ns)


def test_a_new_stamp_or_a_missing_binary_builds_again(module: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    build(module, bin_dir, "v1")

    assert "building into" in build(module, bin_dir, "v2")
    assert run(bin_dir / "hello") == "hello v2"
    assert (bin_dir / ".stamp-hello").read_text() == "v2\n"

    (bin_dir / "hello").unlink()
    assert "building into" in build(module, bin_dir, "v2")
    assert run(bin_dir / "hello") == "hello v2"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_each_build_script_uses_the_shared_helper(script: Path) -> None:
    """One copy of the stamp logic: each script sources the helper and writes no stamp itself."""
    text = script.read_text()
    assert "go-build.sh" in text
    assert ".stamp-" not in text.replace("(.stamp-<name>", "")
