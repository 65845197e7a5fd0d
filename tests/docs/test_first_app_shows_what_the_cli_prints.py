"""docs/first-app.md shows the manifest exactly as `channelworks manifest` prints it for a project
made by `channelworks init` (real commands, in processes of their own)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.cli import clean_env
from tools.docs.markdown import ROOT

PAGE = ROOT / "docs" / "first-app.md"
COMMAND = shutil.which("channelworks", path=str(Path(sys.executable).parent))


def _run(args: list[str], cwd: Path) -> str:
    assert COMMAND is not None
    done = subprocess.run(
        [COMMAND, *args],
        cwd=cwd,
        env=clean_env(),  # not a DJANGO_SETTINGS_MODULE an earlier test left in os.environ
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(COMMAND is None, reason="the channelworks command is not installed")
def test_the_manifest_on_the_page_is_the_one_the_command_prints(tmp_path: Path) -> None:
    _run(["init", "my_chat"], tmp_path)
    printed = _run(
        ["manifest", "--image", "registry.example.com/my-chat-worker:1.0", "-n", "demo"],
        tmp_path / "my_chat",
    )
    # The Secret's key is new on every run: the page shows a placeholder for it.
    printed = re.sub(r"(DJANGO_SECRET_KEY: ).+", r"\1<a new random key>", printed)
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.S)
    assert printed in blocks, f"first-app.md should show this manifest:\n{printed}"


CLI_PAGE = ROOT / "docs" / "cli.md"


@pytest.mark.skipif(COMMAND is None, reason="the channelworks command is not installed")
def test_the_manifest_in_cli_md_is_the_one_the_command_prints_by_default(tmp_path: Path) -> None:
    """cli.md's example: a project `chat` and no options (its comment lines left out)."""
    _run(["init", "chat"], tmp_path)
    printed = _run(["manifest"], tmp_path / "chat")
    printed = re.sub(r"(DJANGO_SECRET_KEY: ).+", r"\1<a new random key>", printed)
    printed = "".join(line for line in printed.splitlines(True) if not line.startswith("#"))
    section = CLI_PAGE.read_text().split("## `channelworks manifest`", 1)[1]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert blocks and blocks[0] == printed, f"cli.md should show this manifest:\n{printed}"
