"""``channelworks init NAME`` makes a project a user starts from: it passes the build's import
check, its build context is written, and ``channelworks dev`` serves its echo consumer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.cli import cli
from tests.dataplane import devmode, processes


def test_the_new_project_has_what_a_user_edits(tmp_path: Path) -> None:
    project = cli.init(tmp_path, "shop_live")
    assert project == tmp_path / "shop_live"
    package = project / "shop_live"
    for name in ("settings.py", "consumers.py", "routing.py", "urls.py", "views.py", "tests.py"):
        assert (package / name).is_file(), name
    for name in ("manage.py", "requirements.txt", "README.md", ".gitignore"):
        assert (project / name).is_file(), name
    settings = (package / "settings.py").read_text()
    assert "channelworks.layers.RedisChannelLayer" in settings
    assert '"ROUTING": "shop_live.routing.channel_routing"' in settings
    assert "{{" not in settings and "{{" not in (project / "README.md").read_text()
    requirements = (project / "requirements.txt").read_text()
    assert "channelworks>=" in requirements and "Django>=" in requirements
    assert (project / "manage.py").stat().st_mode & 0o100
    compiled = [sys.executable, "-m", "py_compile", *map(str, package.glob("*.py"))]
    assert subprocess.run(compiled, check=False).returncode == 0


def test_the_new_project_passes_the_check_and_gets_a_build_context(tmp_path: Path) -> None:
    project = cli.init(tmp_path, "shop_live")
    done = cli.run("build", "--context-only", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "routing shop_live.routing.channel_routing takes" in done.stderr
    for channel in ("websocket.connect", "websocket.receive", "websocket.disconnect"):
        assert channel in done.stderr
    context = Path(done.stdout.strip())
    assert context == project / ".channelworks" / "build"
    dockerfile = (context / "Dockerfile").read_text()
    assert 'DJANGO_SETTINGS_MODULE="shop_live.settings"' in dockerfile
    assert (context / "app" / "shop_live" / "consumers.py").is_file()
    manifest = cli.run("manifest", cwd=project)
    assert manifest.returncode == 0, manifest.stderr
    assert "name: shop-live" in manifest.stdout
    assert "image: localhost/shop-live-worker:latest" in manifest.stdout


async def test_channelworks_dev_serves_the_new_project(tmp_path: Path) -> None:
    project = await asyncio.to_thread(cli.init, tmp_path, "shop_live")
    port = processes.free_port()
    argv = devmode.channelworks_dev(project, port, "--no-reload")
    with devmode.running("dev", argv, tmp_path, project) as dev:
        url = await asyncio.to_thread(dev.wait_for_url)
        socket_url = url.replace("http://", "ws://").rstrip("/") + "/echo/"
        async with asyncio.timeout(30), connect(socket_url) as first, connect(socket_url) as other:
            # The handshake is answered when the connect consumer returns: both are in the group.
            await first.send("hello")
            assert await first.recv() == "you said: hello"
            heard = await other.recv()
        assert heard == "someone said: hello"
        async with httpx.AsyncClient(timeout=30) as client:
            page = await client.get(url)
        assert page.status_code == 200
        assert "<h1>shop_live</h1>" in page.text and "/echo/" in page.text
        # As runserver does: the new project's auth, contenttypes, sessions are not migrated.
        assert "You have unapplied migrations for app(s): auth, contenttypes, sessions" in (
            dev.log()
        )


def test_the_new_projects_own_tests_pass(tmp_path: Path) -> None:
    project = cli.init(tmp_path, "shop_live")
    done = subprocess.run(
        [sys.executable, "manage.py", "test", "--noinput"],
        cwd=project,
        env=cli.clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Ran 3 tests" in done.stderr and "\nOK" in done.stderr


def test_init_refuses_names_and_folders_it_cannot_use(tmp_path: Path) -> None:
    bad = cli.run("init", "my-chat", cwd=tmp_path)
    assert bad.returncode == 2 and "letters, digits and _ only" in bad.stderr
    shadowing = cli.run("init", "json", cwd=tmp_path)
    assert shadowing.returncode == 2 and "installed Python module" in shadowing.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    taken = cli.run("init", "taken", cwd=tmp_path)
    assert taken.returncode == 2 and "not an empty folder" in taken.stderr
    assert [path.name for path in (tmp_path / "taken").iterdir()] == ["notes.txt"]
    assert not (tmp_path / "my-chat").exists() and not (tmp_path / "json").exists()
