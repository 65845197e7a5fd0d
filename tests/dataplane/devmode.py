"""Dev-mode processes for tests: ``channelworks dev``, ``manage.py runserver``, run-chat.sh, and a
tiny project written into a temporary folder whose code a test can change."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil  # type: ignore[import-untyped, unused-ignore]

from tests.dataplane import processes
from tests.support.eventually import eventually

_URL = re.compile(r"serving at (http://\S+)")
START_SECONDS = 90.0


class DevProcess(processes.Process):
    """A dev-mode command whose log says ``serving at URL`` once it is ready."""

    @property
    def title(self) -> str:
        return self.name

    def logs(self) -> str:
        return self.log()[-20000:]

    def wait_for_url(self, times: int = 1, timeout: float = START_SECONDS) -> str:
        """The URL of the ``times``-th "serving at" line (a reload prints another)."""

        def printed() -> str:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited ({self.popen.poll()}):\n{self.log()}")
            found = _URL.findall(self.log())
            return found[times - 1] if len(found) >= times else ""

        return str(
            eventually(
                printed,
                timeout=timeout,
                interval=0.1,
                message=f"{self.name} serving (#{times})",
                retry_on=(AssertionError,),
            )
        )

    def descendants(self) -> list[psutil.Process]:
        try:
            return list(psutil.Process(self.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            return []

    def stop_all(self, number: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the command, wait for it; then make sure nothing it started is left."""
        started = self.descendants()
        self.send_signal(number)
        code = processes.wait_for_exit(self, timeout)
        _, alive = psutil.wait_procs(started, timeout=10)
        for leftover in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        assert not alive, f"left running: {[p.cmdline() for p in alive]}"
        return code


@contextlib.contextmanager
def running(
    name: str, argv: Sequence[str], log_dir: Path, cwd: Path, **env: str
) -> Iterator[DevProcess]:
    """Start a dev-mode command; whatever happens, it and everything it started are stopped."""
    process = DevProcess(name, argv, processes.clean_env(**env), log_dir, cwd)
    processes.ACTIVE.append(process)
    try:
        yield process
    finally:
        processes.ACTIVE.remove(process)
        leftovers = process.descendants()
        process.stop()
        for child in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def channelworks_dev(project: Path, port: int, *options: str) -> list[str]:
    return [
        str(processes.BIN / "channelworks"),
        "dev",
        "--project",
        str(project),
        "--port",
        str(port),
        *options,
    ]


def runserver(port: int, *options: str) -> list[str]:
    return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", *options]


# A project of four files, as small as Django allows, with the layer taken from the environment.
ROUTING = """
from channelworks import Group, route

VERSION = "{version}"


def connect(message):
    message.reply_channel.send({{"accept": True}})
    Group("everyone").add(message.reply_channel)


def receive(message):
    message.reply_channel.send({{"text": VERSION + ":" + message["text"]}})


def disconnect(message):
    Group("everyone").discard(message.reply_channel)


channel_routing = [
    route("websocket.connect", connect),
    route("websocket.receive", receive),
    route("websocket.disconnect", disconnect),
]
"""

SETTINGS = """
import os
from pathlib import Path

SECRET_KEY = "dev-mode-tests"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channelworks", "django.contrib.contenttypes", "django.contrib.auth"]
MIDDLEWARE = []
ROOT_URLCONF = "echoproj.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(__file__).resolve().parent.parent / "db.sqlite3",
    }
}
USE_TZ = True
CHANNELWORKS = {"ROUTING": "echoproj.routing.channel_routing"}
_MODE = os.environ.get("CHANNELWORKS_REDIS_MODE", "memory")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channelworks.layers."
        + {"memory": "InMemoryChannelLayer", "local": "LocalChannelLayer"}[_MODE],
        "CONFIG": {"prefix": os.environ.get("CHANNELWORKS_APP", "echoproj")},
    }
}
"""

URLS = """
from django.http import HttpResponse
from django.urls import path

from echoproj import routing

urlpatterns = [path("", lambda request: HttpResponse("hello " + routing.VERSION))]
"""

MANAGE = """
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "echoproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


def write_project(folder: Path) -> Path:
    """Write the echo project into ``folder`` (version v1); return the folder."""
    package = folder / "echoproj"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(textwrap.dedent(SETTINGS))
    (package / "urls.py").write_text(textwrap.dedent(URLS))
    (folder / "manage.py").write_text(textwrap.dedent(MANAGE))
    set_version(folder, "v1")
    return folder


def set_version(folder: Path, version: str) -> None:
    """Change the code: the consumers answer ``<version>:<text>`` from now on."""
    routing = folder / "echoproj" / "routing.py"
    before = routing.stat().st_mtime_ns if routing.exists() else 0
    routing.write_text(ROUTING.format(version=version))
    if routing.stat().st_mtime_ns == before:  # a coarse clock: make the change visible
        os.utime(routing, ns=(before + 1_000_000_000, before + 1_000_000_000))
