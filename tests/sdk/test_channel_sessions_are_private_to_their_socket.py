"""A channel session belongs to its socket alone: its key cannot be computed from the reply
channel's name, the HTTP session store cannot load it, and it is gone once the socket closes —
also when no consumer of ``websocket.disconnect`` asked for it."""

import hashlib
import json

from django.contrib.sessions.backends.db import SessionStore as HttpSessionStore
from django.test import override_settings

from channelworks import route, sessions, testing
from channelworks.sessions import channel_session


@channel_session
def remember(message):
    message.channel_session["seen"] = message.channel_session.get("seen", 0) + 1
    message.reply_channel.send({"text": json.dumps({"seen": message.channel_session["seen"]})})


@channel_session
def remember_on_close(message):
    message.channel_session["closing"] = True


def undecorated_close(message):
    pass


def test_the_key_is_not_a_hash_of_the_reply_channel_alone():
    name = "websocket.send!abc123"
    key = sessions.channel_session_key(name)
    assert key.startswith("chn") and len(key) == 40
    assert key[3:] != hashlib.sha256(name.encode()).hexdigest()[:37]
    with override_settings(SECRET_KEY="another-secret-of-another-project-0123456789"):
        assert sessions.channel_session_key(name) != key
    assert sessions.channel_session_key(name + "x") != key


class ChannelSessionPrivacyTests(testing.ChannelTestCase):
    def connect_and_remember(self, client):
        client.send_and_consume("websocket.receive", text="x")
        assert client.receive() == {"seen": 1}
        return sessions.channel_session_key(client.reply_channel)

    def test_the_http_session_store_cannot_read_a_channel_session(self):
        client = testing.WSClient()
        with testing.apply_routes([route("websocket.receive", remember)]):
            key = self.connect_and_remember(client)
        assert sessions.session_for_reply_channel(client.reply_channel)["seen"] == 1
        presented = HttpSessionStore(session_key=key)  # a cookie carrying the key
        assert presented.load() == {}

    def test_a_decorated_disconnect_deletes_the_session(self):
        client = testing.WSClient()
        routes = [
            route("websocket.receive", remember),
            route("websocket.disconnect", remember_on_close),
        ]
        with testing.apply_routes(routes):
            key = self.connect_and_remember(client)
            client.send_and_consume("websocket.disconnect", {"code": 1000})
        assert not sessions.channel_session_store(sessions.channel_session_engine())().exists(key)

    def test_an_undecorated_disconnect_deletes_the_session_too(self):
        client = testing.WSClient()
        routes = [
            route("websocket.receive", remember),
            route("websocket.disconnect", undecorated_close),
        ]
        with testing.apply_routes(routes):
            key = self.connect_and_remember(client)
            client.send_and_consume("websocket.disconnect", {"code": 1000})
        assert not sessions.channel_session_store(sessions.channel_session_engine())().exists(key)

    def test_projects_without_channel_sessions_pay_nothing_and_hear_nothing(self):
        client = testing.WSClient()
        signed = "django.contrib.sessions.backends.signed_cookies"
        with (
            override_settings(SESSION_ENGINE=signed),
            testing.apply_routes([route("websocket.disconnect", undecorated_close)]),
            self.assertNoLogs("channelworks.sessions", "WARNING"),
        ):
            client.send_and_consume("websocket.disconnect", {"code": 1000})
