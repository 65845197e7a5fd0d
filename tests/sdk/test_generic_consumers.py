"""Generic consumers: WebsocketConsumer, JsonWebsocketConsumer, the demultiplexer."""

import json
from typing import ClassVar

import pytest
from django.contrib.auth import get_user_model

from channelworks import Group, exceptions, route, route_class, testing
from channelworks.generic.websockets import (
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
    WebsocketMultiplexer,
)

calls = []


class Echo(WebsocketConsumer):
    groups = ("echoes",)

    def receive(self, text=None, bytes=None, **kwargs):
        if text == "close":
            self.close(4001)
        elif text is not None:
            self.send(text=text.upper())
        else:
            self.send(bytes=bytes[::-1], close=True)

    def disconnect(self, message, **kwargs):
        calls.append(("disconnect", message["code"]))


class Room(JsonWebsocketConsumer):
    def connection_groups(self, room, **kwargs):
        return [f"room-{room}"]

    def receive(self, content, room, **kwargs):
        self.group_send(f"room-{room}", {"room": room, "said": content["say"]})


class Refuses(WebsocketConsumer):
    def connect(self, message, **kwargs):
        raise exceptions.DenyConnection()


class WhoAmI(JsonWebsocketConsumer):
    http_user = True

    def receive(self, content, **kwargs):
        self.send({"user": self.message.user.username})


class Counter(JsonWebsocketConsumer):
    def connect(self, message, multiplexer, **kwargs):
        multiplexer.send({"hello": "counter"})

    def receive(self, content, multiplexer, **kwargs):
        self.send({"next": content["n"] + 1})  # goes out through the multiplexer

    def disconnect(self, message, multiplexer, **kwargs):
        calls.append(("counter-gone", multiplexer.stream))


class Shout(JsonWebsocketConsumer):
    def receive(self, content, multiplexer, **kwargs):
        multiplexer.send({"loud": content["word"].upper()})


class Demux(WebsocketDemultiplexer):
    consumers: ClassVar[dict] = {"counter": Counter, "shout": Shout}


def frames(client):
    out = []
    while (message := client.receive(json=False)) is not None:
        out.append(message)
    return out


class WebsocketConsumerTests(testing.ChannelTestCase):
    def test_connect_accepts_joins_groups_and_disconnect_leaves(self):
        client = testing.WSClient()
        calls.clear()
        with testing.apply_routes([route_class(Echo)]):
            client.send_and_consume("websocket.connect")  # checks {"accept": True}
            Group("echoes").send({"text": "to the group"})
            assert client.receive(json=False) == "to the group"
            client.send_and_consume("websocket.disconnect", {"code": 1001})
            Group("echoes").send({"text": "after leaving"})
        assert client.receive() is None
        assert calls == [("disconnect", 1001)]

    def test_receive_and_send_text_bytes_and_close(self):
        client = testing.WSClient()
        with testing.apply_routes([route_class(Echo)]):
            client.send_and_consume("websocket.receive", text="hi")
            client.send_and_consume("websocket.receive", {"bytes": b"abc"})
            client.send_and_consume("websocket.receive", text="close")
        assert client.receive(json=False) == "HI"
        assert client.receive(json=False) == {"bytes": b"cba", "close": True}
        assert client.receive(json=False) == {"close": 4001}

    def test_filters_reach_methods_and_connection_groups(self):
        alice, bob = testing.WSClient(), testing.WSClient()
        with testing.apply_routes([route_class(Room, path=r"^/rooms/(?P<room>[a-z]+)/$")]):
            alice.send_and_consume("websocket.connect", path="/rooms/lobby/")
            bob.send_and_consume("websocket.connect", path="/rooms/lobby/")
            alice.send_and_consume("websocket.receive", text={"say": "hi"}, path="/rooms/lobby/")
        assert bob.receive() == {"room": "lobby", "said": "hi"}
        assert alice.receive() == {"room": "lobby", "said": "hi"}

    def test_deny_connection_rejects_the_socket(self):
        client = testing.WSClient()
        with testing.apply_routes([route_class(Refuses)]):
            client.send_and_consume("websocket.connect", check_accept=False)
        assert client.receive(json=False) == {"close": True}

    def test_http_user_flag_gives_message_user(self):
        get_user_model().objects.create_user("bob", password="pw-bob")
        client = testing.WSClient()
        assert client.login(username="bob", password="pw-bob")
        with testing.apply_routes([route_class(WhoAmI)]):
            client.send_and_consume("websocket.connect")
            client.send_and_consume("websocket.receive", text={})
        assert client.receive() == {"user": "bob"}

    def test_as_route_with_attrs(self):
        client = testing.WSClient()
        with testing.apply_routes([Echo.as_route(attrs={"groups": ["other"]}, path=r"^/e/$")]):
            client.send_and_consume("websocket.connect", path="/e/")
            Group("other").send({"text": "x"})
        assert client.receive(json=False) == "x"


class JsonConsumerTests(testing.ChannelTestCase):
    def test_invalid_json_closes_politely_with_1007(self):
        client = testing.WSClient()
        with testing.apply_routes([route_class(Room, path=r"^/rooms/(?P<room>[a-z]+)/$")]):
            client.send_and_consume("websocket.receive", text="{not json", path="/rooms/x/")
            client.send_and_consume("websocket.receive", {"bytes": b"\x00"}, path="/rooms/x/")
        assert client.receive(json=False) == {"close": 1007}
        assert client.receive(json=False) == {"close": 1003}

    def test_group_send_encodes_json(self):
        client = testing.WSClient()
        client.join_group("json-group")
        JsonWebsocketConsumer.group_send("json-group", {"a": [1, 2]})
        assert client.receive() == {"a": [1, 2]}


class DemultiplexerTests(testing.ChannelTestCase):
    def test_streams_go_to_their_consumers_and_replies_are_multiplexed(self):
        client = testing.WSClient()
        calls.clear()
        with testing.apply_routes([route_class(Demux, path=r"^/multi/$")]):
            client.send_and_consume("websocket.connect", path="/multi/")
            hello = client.receive()
            for stream, payload in (("counter", {"n": 1}), ("shout", {"word": "hey"})):
                client.send_and_consume(
                    "websocket.receive",
                    text={"stream": stream, "payload": payload},
                    path="/multi/",
                )
            replies = [client.receive(), client.receive()]
            client.send_and_consume("websocket.disconnect", {"code": 1000}, path="/multi/")
        assert hello == {"stream": "counter", "payload": {"hello": "counter"}}
        assert replies == [
            {"stream": "counter", "payload": {"next": 2}},
            {"stream": "shout", "payload": {"loud": "HEY"}},
        ]
        assert calls == [("counter-gone", "counter")]

    def test_bad_frames_are_refused_politely(self):
        client = testing.WSClient()
        bad = [
            {"stream": "nope", "payload": {}},
            {"payload": {}},
            {"stream": "shout", "payload": 1},
        ]
        with testing.apply_routes([route_class(Demux)]):
            for frame in bad:
                client.send_and_consume("websocket.receive", text=frame)
        assert frames(client) == [{"close": 1007}] * 3

    def test_demultiplexer_cannot_send_unmultiplexed(self):
        with pytest.raises(exceptions.SendNotAvailableOnDemultiplexer):
            Demux.group_send("g", {"x": 1})

    def test_multiplexer_group_send(self):
        client = testing.WSClient()
        client.join_group("multi-group")
        WebsocketMultiplexer.group_send("multi-group", "news", {"headline": "x"})
        assert client.receive() == {"stream": "news", "payload": {"headline": "x"}}


def test_route_to_a_plain_function_and_class_together(layer):
    def ping(message):
        message.reply_channel.send({"text": json.dumps({"pong": message["text"]})})

    client = testing.WSClient()
    with testing.apply_routes(
        [route("websocket.receive", ping, path=r"^/ping/$"), route_class(Echo)]
    ):
        client.send_and_consume("websocket.receive", text="1", path="/ping/")
        client.send_and_consume("websocket.receive", text="abc", path="/echo/")
    assert client.receive() == {"pong": "1"}
    assert client.receive(json=False) == "ABC"
