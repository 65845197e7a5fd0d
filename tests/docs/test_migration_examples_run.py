"""The worked examples of docs/migration.md run as written: every ```python block that starts
with ``# file: <path>`` is written into a fresh project, which then runs in a process of its own
(Django is configured once per process).

- Channels 1 port: the project's own ported test case passes under Django's test runner, and its
  ``CHANNEL_LAYERS`` builds a Channelworks Redis layer that carries a message through real Redis.
- Channels 4, option A: the unchanged Channels 4 consumer, on the Channelworks layer named by the
  page's settings, broadcasts between two sockets over real Redis.
- Channels 4, option B: the ported consumer does the same under the SDK's testing kit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tools.docs.markdown import ROOT

PAGE = ROOT / "docs" / "migration.md"
CHANNELS_4_HEADING = "## Channels 4 → Channelworks"
_BLOCK = re.compile(r"```python\n# file: (?P<path>\S+)[^\n]*\n(?P<body>.*?)```", re.S)

# Settings every example project needs besides what the page shows.
BASE_SETTINGS = """\
SECRET_KEY = "migration-examples-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ALLOWED_HOSTS = ["*"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"]
"""


def _files(section: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for match in _BLOCK.finditer(section):
        assert match["path"] not in files, f"{match['path']} appears twice in one section"
        files[match["path"]] = match["body"]
    return files


def _sections() -> tuple[dict[str, str], dict[str, str]]:
    text = PAGE.read_text()
    assert CHANNELS_4_HEADING in text
    channels_1, channels_4 = text.split(CHANNELS_4_HEADING, 1)
    return _files(channels_1), _files(channels_4)


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("settings.py"):
            body = BASE_SETTINGS + "\n" + body
        path.write_text(body)
        (path.parent / "__init__.py").touch()
    return root


def _run(project: Path, args: list[str], redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "PYTHONPATH": str(project),
        "REDIS_URL": redis_url,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_page_has_the_examples_the_tests_run() -> None:
    channels_1, channels_4 = _sections()
    assert set(channels_1) == {
        "chat/consumers.py",
        "chat/routing.py",
        "chat/tests.py",
        "mysite/settings.py",
    }
    assert set(channels_4) == {
        "rooms/consumers.py",
        "rooms/routing.py",
        "rooms/cw_consumers.py",
        "rooms/cw_routing.py",
        "mysite/settings.py",
    }
    # The ported Channels 1 code imports nothing from Channels any more.
    old_imports = re.compile(r"^\s*(from|import) channels\b", re.M)
    assert not any(old_imports.search(body) for body in channels_1.values())


def test_the_ported_channels_1_project_passes_its_own_tests(tmp_path: Path, redis_url: str) -> None:
    project = _project(tmp_path, _sections()[0])
    result = _run(project, ["-m", "django", "test", "chat", "-v", "2"], redis_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 2 tests" in result.stderr
    assert re.search(r"test_a_message_reaches_everyone_in_the_room .*\.\.\. ok", result.stderr)
    assert re.search(r"test_anonymous_sockets_are_refused .*\.\.\. ok", result.stderr)


def test_the_ported_channels_1_settings_use_the_channelworks_redis_layer(
    tmp_path: Path, redis_url: str
) -> None:
    project = _project(tmp_path, _sections()[0])
    script = textwrap.dedent(
        """
        import asyncio, django
        django.setup()
        from channelworks import channel_layers

        layer = channel_layers["default"].channel_layer
        print(type(layer).__module__, type(layer).__name__)

        async def round_trip():
            await layer.send("migration.check", {"n": 7})
            message = await layer.receive("migration.check")
            # Without close() the loop's shutdown waits for the layer's blocking reader.
            await layer.close()
            return message

        print(asyncio.run(round_trip()))
        """
    )
    result = _run(project, ["-c", script], redis_url)
    assert result.returncode == 0, result.stdout + result.stderr
    kind, message = result.stdout.strip().splitlines()
    assert kind.endswith(" RedisChannelLayer") and kind.startswith("channelworks.layers")
    assert message == "{'n': 7}"


def test_an_unchanged_channels_4_consumer_broadcasts_through_the_channelworks_layer(
    tmp_path: Path, redis_url: str
) -> None:
    files = {k: v for k, v in _sections()[1].items() if not k.startswith("rooms/cw_")}
    project = _project(tmp_path, files)
    script = textwrap.dedent(
        """
        import asyncio, django
        django.setup()
        from channels.layers import get_channel_layer
        from channels.routing import URLRouter
        from channels.testing import WebsocketCommunicator
        from rooms.routing import websocket_urlpatterns

        async def main():
            layer = get_channel_layer()
            print(type(layer).__module__, type(layer).__name__)
            app = URLRouter(websocket_urlpatterns)
            ada = WebsocketCommunicator(app, "/ws/room/lobby/")
            bob = WebsocketCommunicator(app, "/ws/room/lobby/")
            assert (await ada.connect())[0] and (await bob.connect())[0]
            await ada.send_json_to({"text": "hello"})
            print(await bob.receive_json_from(timeout=10))
            print(await ada.receive_json_from(timeout=10))
            await ada.disconnect()
            await bob.disconnect()

        asyncio.run(main())
        """
    )
    result = _run(project, ["-c", script], redis_url)
    assert result.returncode == 0, result.stdout + result.stderr
    kind, to_bob, to_ada = result.stdout.strip().splitlines()
    assert kind.startswith("channelworks.layers") and kind.endswith(" RedisChannelLayer")
    assert to_bob == to_ada == "{'text': 'hello'}"


def test_the_consumer_ported_to_channelworks_broadcasts_to_its_room(
    tmp_path: Path, redis_url: str
) -> None:
    project = _project(tmp_path, _sections()[1])
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from channelworks.testing import WSClient, apply_routes, in_memory_layer
        from rooms.cw_routing import channel_routing

        path = "/ws/room/lobby/"
        with in_memory_layer(), apply_routes(channel_routing):
            ada, bob, eve = WSClient(), WSClient(), WSClient()
            ada.send_and_consume("websocket.connect", path=path)
            bob.send_and_consume("websocket.connect", path=path)
            eve.send_and_consume("websocket.connect", path="/ws/room/elsewhere/")
            ada.send_and_consume("websocket.receive", text={"text": "hello"}, path=path)
            print(ada.receive(), bob.receive(), eve.receive())
        """
    )
    result = _run(project, ["-c", script], redis_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "{'text': 'hello'} {'text': 'hello'} None"
