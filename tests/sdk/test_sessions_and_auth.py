"""Channel sessions, HTTP sessions and ``message.user`` from the handshake's session cookie."""

import json

from django.contrib.auth import get_user_model
from django.test import Client as DjangoClient

from channelworks import route, testing
from channelworks.auth import (
    channel_and_http_session_user_from_http,
    channel_session_user,
    channel_session_user_from_http,
    http_session_user,
)
from channelworks.sessions import (
    channel_and_http_session,
    channel_session,
    enforce_ordering,
    http_session,
)


def reply_with(message, **values):
    message.reply_channel.send({"text": json.dumps(values)})


@channel_session
def count(message):
    message.channel_session["n"] = message.channel_session.get("n", 0) + 1
    reply_with(message, n=message.channel_session["n"])


@http_session_user
def who_http(message):
    reply_with(message, user=message.user.username or "anonymous")


@http_session
def http_session_key(message):
    session = message.http_session
    reply_with(message, key=None if session is None else session.session_key)


@channel_session_user_from_http
def connect_from_http(message):
    message.reply_channel.send({"accept": True})


@channel_session_user
def who_channel(message):
    reply_with(message, user=message.user.username or "anonymous")


@channel_session_user
async def who_channel_async(message):
    await message.reply_channel.asend(
        {"text": json.dumps({"user": message.user.username or "anonymous"})}
    )


@channel_and_http_session_user_from_http
def both(message):
    message.reply_channel.send(
        {"text": json.dumps({"user": message.user.username, "http": message.http_session["seen"]})}
    )


@channel_and_http_session
@enforce_ordering
def both_plain(message):
    reply_with(message, http=message.http_session is not None)


class ChannelSessionTests(testing.ChannelTestCase):
    def test_channel_session_keeps_state_per_connection(self):
        first, second = testing.WSClient(), testing.WSClient()
        with testing.apply_routes([route("websocket.receive", count)]):
            for _ in range(3):
                first.send_and_consume("websocket.receive", text="x")
            second.send_and_consume("websocket.receive", text="x")
        assert [first.receive()["n"] for _ in range(3)] == [1, 2, 3]
        assert second.receive() == {"n": 1}


class HttpUserTests(testing.ChannelTestCase):
    def setUp(self):
        self.user = get_user_model().objects.create_user("alice", password="pw-alice")

    def browser_cookie(self):
        """Log in through Django's test Client, as a browser would, and take its cookie."""
        browser = DjangoClient()
        assert browser.login(username="alice", password="pw-alice")
        return browser.cookies["sessionid"].value

    def test_message_user_is_the_user_of_the_session_cookie(self):
        client = testing.WSClient()
        client.set_cookie("sessionid", self.browser_cookie())
        with testing.apply_routes([route("websocket.connect", who_http)]):
            client.send_and_consume("websocket.connect", path="/", check_accept=False)
        assert client.receive() == {"user": "alice"}

    def test_a_session_key_in_the_url_counts_only_where_the_project_opts_in(self):
        """A key in a URL lands in access logs and browser history: off unless asked for."""
        query = f"session_key={self.browser_cookie()}".encode()
        seen = {}
        for opt_in in (False, True):
            client = testing.WSClient()
            ours = {**self.ours(), "SESSION_KEY_IN_QUERY": opt_in}
            routes = [route("websocket.connect", who_http)]
            with self.settings(CHANNELWORKS=ours), testing.apply_routes(routes):
                client.send_and_consume(
                    "websocket.connect", {"query_string": query}, check_accept=False
                )
            seen[opt_in] = client.receive()["user"]
        assert seen == {False: "anonymous", True: "alice"}

    @staticmethod
    def ours():
        from django.conf import settings

        return dict(getattr(settings, "CHANNELWORKS", None) or {})

    def test_no_cookie_is_anonymous_and_no_http_session(self):
        client = testing.WSClient()
        routes = [
            route("websocket.connect", who_http),
            route("websocket.receive", http_session_key),
        ]
        with testing.apply_routes(routes):
            client.send_and_consume("websocket.connect", check_accept=False)
            client.send_and_consume("websocket.receive", text="x")
        assert client.receive() == {"user": "anonymous"}
        assert client.receive() == {"key": None}

    def test_user_from_http_on_connect_is_kept_for_later_messages(self):
        client = testing.WSClient()
        client.set_cookie("sessionid", self.browser_cookie())
        routes = [
            route("websocket.connect", connect_from_http),
            route("websocket.receive", who_channel),
            route("websocket.disconnect", who_channel_async),
        ]
        with testing.apply_routes(routes):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text="x")  # carries no cookie
            client.send_and_consume("websocket.disconnect", {"code": 1000})
        assert client.receive() == {"user": "alice"}
        assert client.receive() == {"user": "alice"}

    def test_project_routing_whoami_matches_request_user(self):
        client = testing.WSClient()
        client.set_cookie("sessionid", self.browser_cookie())
        client.send_and_consume("websocket.connect", path="/whoami/")
        client.send_and_consume("websocket.receive", text="?", path="/whoami/")
        assert client.receive() == {"user": "alice", "connected_as": "alice"}

    def test_a_changed_password_logs_the_socket_out_as_it_would_a_request(self):
        cookie = self.browser_cookie()
        self.user.set_password("new-password")
        self.user.save()
        client = testing.WSClient()
        client.set_cookie("sessionid", cookie)
        with testing.apply_routes([route("websocket.connect", who_http)]):
            client.send_and_consume("websocket.connect", check_accept=False)
        assert client.receive() == {"user": "anonymous"}

    def test_wsclient_login_and_force_login(self):
        client = testing.WSClient()
        assert not client.login(username="alice", password="wrong")
        assert client.login(username="alice", password="pw-alice")
        other = testing.WSClient()
        other.force_login(self.user)
        with testing.apply_routes([route("websocket.connect", who_http)]):
            client.send_and_consume("websocket.connect", check_accept=False)
            other.send_and_consume("websocket.connect", check_accept=False)
        assert client.receive() == {"user": "alice"}
        assert other.receive() == {"user": "alice"}

    def test_http_session_follows_the_connection_with_channel_and_http_session(self):
        client = testing.WSClient()
        client.force_login(self.user)
        client.session["seen"] = "yes"
        client.session.save()
        routes = [route("websocket.connect", both), route("websocket.receive", both_plain)]
        with testing.apply_routes(routes):
            client.send_and_consume("websocket.connect", check_accept=False)
            client.send_and_consume("websocket.receive", text="x")
        assert client.receive() == {"user": "alice", "http": "yes"}
        assert client.receive() == {"http": True}
