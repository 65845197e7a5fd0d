"""Consumers whose behaviour the data-plane tests measure."""

import json
import os
import time
from typing import Any

from channelworks import Channel, Group

LOBBY = "lobby"
ECHO_SECONDS = 0.01  # long enough that a worker killed under load holds messages in flight


def accept(message: Any, **kwargs: Any) -> None:
    message.reply_channel.send({"accept": True})


def join_lobby(message: Any, **kwargs: Any) -> None:
    """Accept, and add the socket to the group ``lobby`` (what a chat room does)."""
    message.reply_channel.send({"accept": True})
    Group(LOBBY).add(message.reply_channel)


def leave_lobby(message: Any, **kwargs: Any) -> None:
    Group(LOBBY).discard(message.reply_channel)


def echo(message: Any, **kwargs: Any) -> None:
    """Answer ``{"n": ..., "pid": <worker pid>}`` for a frame ``{"n": ...}``."""
    time.sleep(ECHO_SECONDS)
    frame = json.loads(message["text"])
    message.reply_channel.send({"text": json.dumps({"n": frame["n"], "pid": os.getpid()})})


def explode(message: Any, **kwargs: Any) -> None:
    """Raise on ``boom``; echo anything else."""
    if message["text"] == "boom":
        raise RuntimeError("this consumer fails on purpose")
    message.reply_channel.send({"text": message["text"]})


def explode_on_connect(message: Any, **kwargs: Any) -> None:
    raise RuntimeError("this connect consumer fails on purpose")


def job(message: Any, **kwargs: Any) -> None:
    Channel(message["reply_to"]).send({"done": message["id"]})
