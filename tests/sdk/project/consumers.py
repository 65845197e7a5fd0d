"""Consumers of the test project's routing."""

import json

from channelworks import Group
from channelworks.auth import channel_session_user, channel_session_user_from_http
from channelworks.generic.websockets import JsonWebsocketConsumer


@channel_session_user_from_http
def whoami_connect(message):
    message.reply_channel.send({"accept": True})
    message.channel_session["connected_as"] = message.user.username or "anonymous"


@channel_session_user
def whoami_receive(message):
    message.reply_channel.send(
        {
            "text": json.dumps(
                {
                    "user": message.user.username or "anonymous",
                    "connected_as": message.channel_session["connected_as"],
                }
            )
        }
    )


def liveblog_connect(message, slug):
    message.reply_channel.send({"accept": True})
    Group(f"liveblog-{slug}").add(message.reply_channel)


class RoomConsumer(JsonWebsocketConsumer):
    http_user = True

    def connection_groups(self, room, **kwargs):
        return [f"room-{room}"]

    def receive(self, content, room, **kwargs):
        self.group_send(
            f"room-{room}",
            {"room": room, "user": self.message.user.username, "said": content.get("say")},
        )
