"""The build context is the same bytes for the same project: sorted, fixed times and modes, a
digest; what must not ship (VCS, caches, secrets, databases, .dockerignore) is left out."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.cli import cli


def context(project: Path, destination: Path, **env: str) -> tuple[Path, str]:
    done = cli.run(
        "build", "--context-only", "--context", str(destination), cwd=project,
        env=cli.clean_env(**env),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    digest = re.search(r"sha256:[0-9a-f]{64}", done.stderr)
    assert digest is not None, done.stderr
    return Path(done.stdout.strip()), digest.group(0)


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under ``folder``: mode, modification time and content."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else b""
        found[path.relative_to(folder).as_posix()] = (info.st_mode, int(info.st_mtime), content)
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    return cli.init(tmp_path / "src", "ledger")


def test_two_builds_of_one_project_give_the_same_context(project: Path, tmp_path: Path) -> None:
    first, first_digest = context(project, tmp_path / "one")
    # The same files, touched and re-moded since: the context must not notice.
    copy = tmp_path / "copy" / "ledger"
    shutil.copytree(project, copy)
    os.utime(copy / "ledger" / "consumers.py", (1_700_000_000, 1_700_000_000))
    (copy / "README.md").chmod(0o600)
    second, second_digest = context(copy, tmp_path / "two")
    assert first_digest == second_digest
    assert snapshot(first) == snapshot(second)
    times = {mtime for _, mtime, _ in snapshot(first).values()}
    assert times == {315532800}  # 1980-01-01, whatever the files' own times
    modes = {path: mode & 0o777 for path, (mode, _, _) in snapshot(first).items()}
    assert modes["app/manage.py"] == 0o755 and modes["app/README.md"] == 0o644
    assert modes["app/ledger"] == 0o755
    # A change of code changes the digest.
    consumers = copy / "ledger" / "consumers.py"
    consumers.write_text(consumers.read_text() + "# changed\n")
    _, changed = context(copy, tmp_path / "three")
    assert changed != first_digest


def test_source_date_epoch_sets_the_times(project: Path, tmp_path: Path) -> None:
    folder, _ = context(project, tmp_path / "ctx", SOURCE_DATE_EPOCH="1600000000")
    assert {mtime for _, mtime, _ in snapshot(folder).values()} == {1600000000}
    bad = cli.run(
        "build", "--context-only", cwd=project, env=cli.clean_env(SOURCE_DATE_EPOCH="yesterday")
    )
    assert bad.returncode == 2 and "SOURCE_DATE_EPOCH='yesterday'" in bad.stderr


def test_what_must_not_ship_is_left_out(project: Path, tmp_path: Path) -> None:
    leftovers = [
        ".git/config", "ledger/__pycache__/settings.cpython-311.pyc", ".venv/bin/python",
        ".env", "db.sqlite3", "node_modules/x/index.js", "notes/private.md", "scratch.log",
    ]  # fmt: skip
    for name in leftovers:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("not for the image")
    (project / ".dockerignore").write_text("# ours\nnotes/\n*.log\n")
    (project / "ledger" / "static").mkdir()
    (project / "ledger" / "static" / "app.js").write_text("console.log(1)")
    folder, _ = context(project, tmp_path / "ctx")
    shipped = set(snapshot(folder / "app"))
    for name in leftovers:
        assert name not in shipped, name
    assert {"ledger/static/app.js", "ledger/settings.py", ".dockerignore"} <= shipped
    assert (folder / "requirements.txt").read_bytes() == (project / "requirements.txt").read_bytes()


def test_the_dockerfile_names_the_base_settings_and_routing(project: Path, tmp_path: Path) -> None:
    done = cli.run(
        "build", "--context-only", "--context", str(tmp_path / "ctx"), "--base",
        "registry.example/channelworks/worker:9.9", "--routing", "ledger.routing.channel_routing",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert dockerfile.splitlines()[1] == "FROM registry.example/channelworks/worker:9.9"
    assert 'DJANGO_SETTINGS_MODULE="ledger.settings"' in dockerfile
    assert 'CHANNELWORKS_ROUTING="ledger.routing.channel_routing"' in dockerfile
    assert "COPY app/ /app/" in dockerfile and "--requirement" in dockerfile
    default = cli.run("build", "--context-only", cwd=project)
    assert default.returncode == 0, default.stderr
    default_file = (project / ".channelworks" / "build" / "Dockerfile").read_text()
    assert default_file.splitlines()[1].startswith("FROM channelworks/worker:")


def test_a_folder_it_did_not_write_is_not_emptied(project: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    done = cli.run("build", "--context-only", "--context", str(mine), cwd=project)
    assert done.returncode == 2 and "was not written by channelworks build" in done.stderr
    assert (mine / "thesis.tex").read_text() == "years of work"
    # Its own context is replaced on the next build, files removed from the project included.
    folder, _ = context(project, tmp_path / "ctx")
    (project / "ledger" / "views.py").unlink()
    (project / "ledger" / "urls.py").write_text("urlpatterns = []\n")
    context(project, tmp_path / "ctx")
    assert not (folder / "app" / "ledger" / "views.py").exists()
