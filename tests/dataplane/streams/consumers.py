"""A feed with history: sockets on ``/feed/<group>/`` join the group and say hello; a frame
``publish:<text>`` on ``/publish/<group>/`` sends ``<text>`` to the group. On the feed socket,
``remember:<value>`` keeps a value in the channel session and ``recall`` gives it back; a
socket's disconnect is announced to the group ``left-<group>``."""

from __future__ import annotations

import json
from typing import Any

from channelworks import Group
from channelworks.sessions import channel_session


@channel_session
def feed_connect(message: Any, group: str) -> None:
    Group(group).add(message.reply_channel)
    message.channel_session["group"] = group
    message.reply_channel.send({"accept": True, "text": json.dumps({"hello": group})})


@channel_session
def feed_receive(message: Any, group: str) -> None:
    text = message.content.get("text") or ""
    if text.startswith("remember:"):
        message.channel_session["value"] = text.split(":", 1)[1]
        message.reply_channel.send({"text": json.dumps({"remembered": True})})
    elif text == "recall":
        value = message.channel_session.get("value")
        message.reply_channel.send({"text": json.dumps({"recalled": value})})


@channel_session
def feed_disconnect(message: Any, group: str) -> None:
    """Leave the group, and tell watchers (sockets on /feed/left-<group>/) with what the channel
    session held: the consumer ran for this socket, with its session."""
    Group(message.channel_session.get("group", group)).discard(message.reply_channel)
    left = {"left": group, "value": message.channel_session.get("value")}
    Group(f"left-{group}").send({"text": json.dumps(left)})


def publish_connect(message: Any, group: str) -> None:
    message.reply_channel.send({"accept": True})


def publish_receive(message: Any, group: str) -> None:
    text = message.content.get("text") or ""
    if text.startswith("publish:"):
        Group(group).send({"text": text.split(":", 1)[1]})
