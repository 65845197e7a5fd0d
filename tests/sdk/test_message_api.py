"""``Message``: content access, channel, reply channel, copies."""

from channelworks import Channel, testing
from channelworks.message import Message


def test_message_reads_like_its_content(layer):
    message = Message({"path": "/chat/", "text": "hi"}, "websocket.receive", layer)
    assert message.content == {"path": "/chat/", "text": "hi"}
    assert message["text"] == "hi"
    assert "path" in message and "bytes" not in message
    assert message.get("bytes") is None and message.get("bytes", b"") == b""
    assert sorted(message.keys()) == ["path", "text"]
    assert dict(message.items()) == message.content
    assert message.channel.name == "websocket.receive"
    assert isinstance(message.channel, Channel)


def test_reply_channel_is_a_channel_you_can_send_to(layer):
    message = Message({"reply_channel": "test.conn!abc"}, "websocket.connect", layer)
    assert message.reply_channel == Channel("test.conn!abc")
    message.reply_channel.send({"accept": True})
    assert testing.next_message("test.conn!abc").content == {"accept": True}


def test_message_without_reply_channel_has_none(layer):
    assert Message({"x": 1}, "custom.channel", layer).reply_channel is None


def test_copy_does_not_share_content(layer):
    message = Message({"reply_channel": "test.conn!a", "nested": {"n": 1}}, "custom", layer)
    copied = message.copy()
    copied["nested"]["n"] = 2
    assert message["nested"]["n"] == 1
    assert copied.channel.name == "custom"


def test_session_and_user_attributes_are_absent_until_a_decorator_sets_them(layer):
    message = Message({"reply_channel": "test.conn!a"}, "websocket.receive", layer)
    assert not hasattr(message, "channel_session")
    assert not hasattr(message, "http_session")
    assert not hasattr(message, "user")
