"""The default ``http.request`` route: Django's views, middleware, sessions, login, CSRF."""

import json
import re

from django.contrib.auth import get_user_model
from django.test import override_settings

from channelworks import handler, route, testing


def get(client, path, **kwargs):
    return testing.http_request(client, path, **kwargs)


def cookie_header(*replies):
    jar = {}
    for reply in replies:
        for name, morsel in reply.cookies.items():
            jar[name] = morsel.value
    return "; ".join(f"{k}={v}" for k, v in jar.items())


class HttpHandlerTests(testing.ChannelTestCase):
    def setUp(self):
        self.client_ = testing.Client()

    def test_request_reaches_the_view_as_a_django_request(self):
        reply = get(self.client_, "/inspect/?q=1&x=y", headers={"X-Test": "present"})
        assert reply.status == 200
        assert json.loads(reply.content) == {
            "method": "GET",
            "path": "/inspect/",
            "path_info": "/inspect/",
            "get": {"q": "1", "x": "y"},
            "scheme": "http",
            "host": "testserver",
            "remote_addr": "127.0.0.1",
            "x_test": "present",
            "user": "anonymous",
        }
        assert reply.header("Content-Type") == "application/json"

    def test_middleware_runs(self):
        assert get(self.client_, "/inspect/").header("X-Stamp") == "stamped"

    def test_https_scheme_is_seen_by_django(self):
        reply = get(self.client_, "/inspect/", scheme="https")
        assert json.loads(reply.content)["scheme"] == "https"

    def test_request_body_and_forms(self):
        echoed = get(self.client_, "/echo/", method="POST", body=b"\x00raw body\xff")
        assert echoed.content == b"\x00raw body\xff"
        form = get(
            self.client_,
            "/form-post/",
            method="POST",
            body=b"name=ada",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert json.loads(form.content) == {"name": "ada", "files": []}
        boundary = "XyZ"
        multipart = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbob\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="doc"; filename="a.txt"'
            f"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
        ).encode()
        upload = get(
            self.client_,
            "/form-post/",
            method="POST",
            body=multipart,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert json.loads(upload.content) == {"name": "bob", "files": ["doc"]}

    def test_sessions_persist_through_the_cookie(self):
        first = get(self.client_, "/counter/")
        assert first.content == b"1"
        cookie = cookie_header(first)
        assert cookie.startswith("sessionid=")
        second = get(self.client_, "/counter/", headers={"Cookie": cookie})
        assert second.content == b"2"

    def test_csrf_is_enforced_as_under_runserver(self):
        refused = get(
            self.client_,
            "/form/",
            method="POST",
            body=b"name=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert refused.status == 403
        page = get(self.client_, "/form/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
        accepted = get(
            self.client_,
            "/form/",
            method="POST",
            body=b"name=x&csrfmiddlewaretoken=" + token,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": cookie_header(page),
            },
        )
        assert accepted.status == 200
        assert accepted.content == b"accepted x"

    def test_login_through_django_then_the_socket_sees_the_user(self):
        get_user_model().objects.create_user("carol", password="pw-carol")
        page = get(self.client_, "/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
        login = get(
            self.client_,
            "/login/",
            method="POST",
            body=b"username=carol&password=pw-carol&csrfmiddlewaretoken=" + token,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": cookie_header(page),
            },
        )
        assert login.status == 302 and login.header("Location") == "/me/"
        cookies = cookie_header(page, login)
        assert get(self.client_, "/me/", headers={"Cookie": cookies}).content == b"carol"
        socket = testing.WSClient()
        socket.set_cookie("sessionid", login.cookies["sessionid"].value)
        socket.send_and_consume("websocket.connect", path="/whoami/")
        socket.send_and_consume("websocket.receive", text="?", path="/whoami/")
        assert socket.receive() == {"user": "carol", "connected_as": "carol"}

    def test_streaming_response_is_sent_as_it_is_produced(self):
        reply = get(self.client_, "/stream/")
        assert reply.status == 200
        assert reply.content == b"part0;part1;part2;part3;part4;"
        first, *rest = reply.messages
        assert first["status"] == 200 and first["content"] == b"" and first["more_content"]
        assert [m["content"] for m in rest[:-1]] == [f"part{n};".encode() for n in range(5)]
        assert rest[-1] == {"content": b"", "more_content": False}

    def test_large_content_is_chunked(self):
        reply = get(self.client_, "/big/")
        assert len(reply.content) == 1_300_000
        assert [len(m["content"]) for m in reply.messages] == [524288, 524288, 251424]
        assert [m["more_content"] for m in reply.messages] == [True, True, False]
        assert "status" not in reply.messages[1]

    def test_errors_and_unknown_paths_are_django_responses(self):
        assert get(self.client_, "/broken/").status == 500
        assert get(self.client_, "/nowhere/").status == 404


class StaticFilesTests(testing.ChannelTestCase):
    def test_static_files_are_served_with_debug_as_runserver_does(self):
        client = testing.Client()
        with override_settings(DEBUG=True), testing.apply_routes([route("http.request", "django")]):
            reply = get(client, "/static/hello.txt")
            missing = get(client, "/static/missing.txt")
        assert reply.status == 200
        assert reply.content == b"static file body\n"
        assert missing.status == 404

    def test_static_files_are_not_served_without_debug(self):
        client = testing.Client()
        with testing.apply_routes([route("http.request", handler.ViewConsumer())]):
            assert get(client, "/static/hello.txt").status == 404
