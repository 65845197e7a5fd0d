"""The liveblog example: ``Post.save()`` in any process of the project pushes the post to every
page watching, through the layer (Redis Cluster), whichever interface process holds the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.dataplane import processes
from tests.support.eventually import eventually
from tests.support.redis_servers import RedisClusterNodes


@pytest.fixture(scope="module")
def stack(
    redis_cluster: RedisClusterNodes,
    liveblog_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[processes.Stack]:
    root = tmp_path_factory.mktemp("liveblog-stack")
    with processes.running_stack(
        processes.LIVEBLOG, liveblog_db, redis_cluster.url, root, interfaces=2, workers=1
    ) as running:
        yield running


async def test_a_post_saved_by_a_management_command_reaches_every_watching_page(
    stack: processes.Stack,
) -> None:
    path = "/liveblog/launch/stream/"
    async with asyncio.timeout(90):
        async with (
            connect(stack.interfaces[0].ws_url(path)) as first,
            connect(stack.interfaces[1].ws_url(path)) as second,
        ):
            # The post is saved in a process of its own: `manage.py post` (no worker involved).
            done = await asyncio.to_thread(stack.manage, "post", "launch", "We", "have", "liftoff")
            assert "posted #" in done.stdout
            pushed = [json.loads(await ws.recv()) for ws in (first, second)]
    assert pushed[0] == pushed[1]
    assert pushed[0]["body"] == "We have liftoff"


async def test_a_post_saved_from_a_django_shell_reaches_the_page(stack: processes.Stack) -> None:
    code = (
        "from blog.models import Liveblog, Post; "
        "Post.objects.create(liveblog=Liveblog.objects.get(slug='launch'), body='from a shell')"
    )
    async with asyncio.timeout(90):
        async with connect(stack.interfaces[1].ws_url("/liveblog/launch/stream/")) as page:
            await asyncio.to_thread(stack.manage, "shell", "-c", code)
            pushed = json.loads(await page.recv())
    assert pushed["body"] == "from a shell"


async def test_the_page_lists_posts_and_an_unknown_liveblog_is_refused(
    stack: processes.Stack,
) -> None:
    interface = stack.interfaces[0]
    async with httpx.AsyncClient(base_url=interface.base_url, timeout=30) as client:
        page = await client.get("/liveblog/launch/")
        missing = await client.get("/liveblog/nothing-here/")
    assert page.status_code == 200 and "Launch day" in page.text
    assert missing.status_code == 404
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(30):
            await connect(interface.ws_url("/liveblog/nothing-here/stream/"))
    assert refused.value.response.status_code == 403


@contextlib.contextmanager
def gunicorn_serving(stack: processes.Stack, log: Path) -> Iterator[str]:
    """The liveblog's HTTP side on a plain WSGI server, as in a mixed deployment: two gunicorn
    workers with the project's own settings and layer, no Channelworks process involved."""
    port = processes.free_port()
    with log.open("wb") as output:
        server = subprocess.Popen(
            [
                str(processes.BIN / "gunicorn"),
                "liveblog.wsgi:application",
                *("--workers", "2", "--bind", f"127.0.0.1:{port}", "--access-logfile", "-"),
            ],
            cwd=processes.LIVEBLOG.folder,
            env=stack.env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _answers(f"{base_url}/"), timeout=30, interval=0.2)
        yield base_url
    finally:
        server.terminate()
        server.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _csrf_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def test_a_post_saved_in_the_admin_on_gunicorn_reaches_the_page(
    stack: processes.Stack, tmp_path: Path
) -> None:
    stack.manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "wsgi-editor",
        "--email",
        "editor@example.com",
        DJANGO_SUPERUSER_PASSWORD="a-long-editor-password",
    )
    with (
        gunicorn_serving(stack, tmp_path / "gunicorn.log") as base_url,
        httpx.Client(base_url=base_url) as admin,
    ):
        login = admin.get("/admin/login/")
        logged_in = admin.post(
            "/admin/login/?next=/admin/",
            data={
                "username": "wsgi-editor",
                "password": "a-long-editor-password",
                "csrfmiddlewaretoken": _csrf_token(login),
            },
        )
        assert logged_in.headers.get("location") == "/admin/", logged_in.text[:500]
        form = admin.get("/admin/blog/post/add/")
        form.raise_for_status()
        launch = re.search(r'<option value="(\d+)">[^<]*</option>', form.text)
        assert launch, form.text[:500]
        async with asyncio.timeout(90):
            async with connect(stack.interfaces[0].ws_url("/liveblog/launch/stream/")) as page:
                saved = await asyncio.to_thread(
                    admin.post,
                    "/admin/blog/post/add/",
                    data={
                        "liveblog": launch.group(1),
                        "body": "from the admin, on gunicorn",
                        "csrfmiddlewaretoken": _csrf_token(form),
                    },
                )
                assert saved.status_code == 302, saved.text[:500]  # back to the list: saved
                pushed = json.loads(await page.recv())
    assert pushed["body"] == "from the admin, on gunicorn"
