"""``channelworks build`` imports the project as a worker would (settings, Django, routing, URLs)
before it writes or builds anything, and says what is wrong and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return cli.init(tmp_path, "newsroom")


def build(project: Path, *options: str) -> tuple[int, str]:
    done = cli.run("build", "--context-only", *options, cwd=project)
    return done.returncode, done.stderr


def assert_nothing_written(project: Path) -> None:
    assert not (project / ".channelworks").exists()


def test_a_settings_module_that_does_not_exist_is_named(project: Path) -> None:
    code, said = build(project, "--settings", "newsroom.setings")
    assert code == 2
    assert "settings module 'newsroom.setings' not found in" in said
    assert_nothing_written(project)


def test_a_module_that_is_not_settings_is_refused(project: Path) -> None:
    code, said = build(project, "--settings", "newsroom.consumers")
    assert code == 2
    assert "newsroom.consumers does not look like Django settings" in said
    assert_nothing_written(project)


def test_settings_that_fail_to_import_are_reported_with_the_line(project: Path) -> None:
    settings = project / "newsroom" / "settings.py"
    lines = settings.read_text().splitlines()
    lines.insert(10, "import newsroom_helpers  # not installed")
    settings.write_text("\n".join(lines) + "\n")
    code, said = build(project)
    assert code == 2
    assert "settings module 'newsroom.settings' does not import" in said
    assert "No module named 'newsroom_helpers'" in said
    assert "(at newsroom/settings.py:11)" in said
    assert "Traceback" not in said
    assert_nothing_written(project)


def test_a_routing_whose_consumers_do_not_import_is_reported(project: Path) -> None:
    consumers = project / "newsroom" / "consumers.py"
    consumers.write_text(consumers.read_text() + "\n\nraise RuntimeError('half-written')\n")
    code, said = build(project)
    assert code == 2
    assert "the routing newsroom.routing.channel_routing does not load" in said
    assert "RuntimeError: half-written" in said and "newsroom/consumers.py" in said
    assert_nothing_written(project)


def test_settings_without_a_routing_are_refused(project: Path) -> None:
    settings = project / "newsroom" / "settings.py"
    settings.write_text(settings.read_text().replace("CHANNELWORKS = {", "UNUSED = {"))
    code, said = build(project)
    assert code == 2 and "newsroom.settings names no routing" in said
    assert_nothing_written(project)


def test_a_routing_given_on_the_command_line_is_checked(project: Path) -> None:
    code, said = build(project, "--routing", "newsroom.routing.no_such_list")
    assert code == 2 and "the routing newsroom.routing.no_such_list does not load" in said
    code, said = build(project, "--routing", "not a path")
    assert code == 2 and "is not a dotted Python path" in said


def test_a_broken_urlconf_is_reported(project: Path) -> None:
    (project / "newsroom" / "views.py").write_text("def index(:\n")
    code, said = build(project)
    assert code == 2 and "ROOT_URLCONF 'newsroom.urls' does not import" in said
    assert "SyntaxError" in said


def test_missing_files_and_folders_are_named(project: Path, tmp_path: Path) -> None:
    (project / "requirements.txt").unlink()
    code, said = build(project)
    assert code == 2 and "no requirements file at" in said and "requirements.txt" in said
    code, said = build(project, "--project", str(tmp_path / "elsewhere"))
    assert code == 2 and "no such folder" in said
    empty = tmp_path / "empty"
    empty.mkdir()
    code, said = build(empty)
    assert code == 2 and "no Django settings found" in said


def test_no_check_skips_the_import(project: Path) -> None:
    (project / "newsroom" / "consumers.py").write_text("raise RuntimeError('broken')\n")
    code, said = build(project, "--no-check")
    assert code == 0, said
    assert (project / ".channelworks" / "build" / "Dockerfile").is_file()
