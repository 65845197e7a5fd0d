"""``channelworks build --push`` without ``--tag`` would push the default name,
``localhost/<app>-worker:latest``, which no registry serves: it is refused before anything is
checked, written or built, and the message says what to give instead."""

from __future__ import annotations

from pathlib import Path

from tests.cli import cli


def test_push_without_a_registry_in_the_tag_is_refused_at_once(tmp_path: Path) -> None:
    project = cli.init(tmp_path, "bulletin")
    for options in (("--push",), ("--push", "--tag", "localhost/bulletin-worker:2")):
        done = cli.run("build", *options, cwd=project)
        assert done.returncode == 2, done.stderr
        assert "channelworks build: --push needs --tag naming the registry" in done.stderr
        assert "registry.example.com/bulletin-worker:1.0" in done.stderr
        assert done.stdout == ""
    assert not (project / ".channelworks").exists()  # nothing written
