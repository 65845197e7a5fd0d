"""Two streams on one socket, as Channels 1's ``WebsocketDemultiplexer`` serves them.

``greeting`` says hello on connect, naming the worker process, and sends one frame outside any
stream (what a page's ``listen()`` callback gets); ``echo`` answers every payload.
"""

import json
import os
from typing import Any

from channelworks import Group
from channelworks.generic.websockets import JsonWebsocketConsumer, WebsocketDemultiplexer


class Greeting(JsonWebsocketConsumer):  # type: ignore[misc]
    def connect(self, message: Any, multiplexer: Any, **kwargs: Any) -> None:
        multiplexer.send({"hello": "from the greeting stream", "worker": os.getpid()})
        message.reply_channel.send({"text": json.dumps({"plain": "not multiplexed"})})

    def disconnect(self, message: Any, multiplexer: Any, **kwargs: Any) -> None:
        pass


class Echo(JsonWebsocketConsumer):  # type: ignore[misc]
    def connect(self, message: Any, multiplexer: Any, **kwargs: Any) -> None:
        pass

    def receive(self, content: Any, multiplexer: Any, **kwargs: Any) -> None:
        multiplexer.send({"echo": content})

    def disconnect(self, message: Any, multiplexer: Any, **kwargs: Any) -> None:
        pass


class Demultiplexer(WebsocketDemultiplexer):  # type: ignore[misc]
    consumers = {"greeting": Greeting, "echo": Echo}  # noqa: RUF012


def watch(message: Any, **kwargs: Any) -> None:
    """A socket on ``/watch/`` gets whatever is sent to the group ``watchers``."""
    message.reply_channel.send({"accept": True})
    Group("watchers").add(message.reply_channel)
