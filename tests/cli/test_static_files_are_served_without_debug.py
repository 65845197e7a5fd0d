"""Without ``DEBUG`` the worker serves the collected static files (``STATIC_ROOT``, which
``channelworks build`` fills with ``collectstatic``) with caching headers, and nothing before
they are collected. Real ``channelworks dev`` processes on a project made by ``channelworks
init`` (with ``DEBUG`` they are served from the apps, as runserver does: the install test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.cli import cli
from tests.dataplane import devmode, processes

SCRIPT = "/static/channels/js/websocketbridge.js"
WITHOUT_DEBUG = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "a-key-of-this-test"}


def fetch(project: Path, log_dir: Path, **env: str) -> tuple[httpx.Response, str]:
    """The script as ``channelworks dev`` serves it, and the command's log."""
    port = processes.free_port()
    argv = devmode.channelworks_dev(project, port, "--no-reload")
    with devmode.running("dev", argv, log_dir, project, **env) as dev:
        url = dev.wait_for_url().rstrip("/")
        return httpx.get(url + SCRIPT, timeout=30), dev.log()


def test_collected_static_files_are_served_with_caching_headers_when_debug_is_off(
    tmp_path: Path,
) -> None:
    project = cli.init(tmp_path, "shop_live")
    not_collected, _ = fetch(project, tmp_path, **WITHOUT_DEBUG)
    assert not_collected.status_code == 404

    for command in ("collectstatic", "migrate"):  # as a deploy does
        done = subprocess.run(
            [sys.executable, "manage.py", command, "--noinput"],
            cwd=project,
            env=processes.clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert (project / "staticfiles" / "channels" / "js" / "websocketbridge.js").is_file()
    served, log = fetch(project, tmp_path, **WITHOUT_DEBUG)
    assert served.status_code == 200 and "WebSocketBridge" in served.text
    assert served.headers["cache-control"] == "public, max-age=3600"
    assert "last-modified" in served.headers
    assert "unapplied migrations" not in log  # migrated: no warning (the init test has one)
