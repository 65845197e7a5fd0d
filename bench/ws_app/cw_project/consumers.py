"""Channels-1-style consumers, as a Channels 1 project writes them (plain sync functions).

The worker runs sync consumers in its thread pool; their ``reply_channel.send`` and ``Group.send``
are held and sent when the consumer returns (Channels 1's ``immediately=False``). The ``async_*``
functions are the same consumers as ``async def`` (run on the worker's event loop), selected with
``bench/ws.py --cw-consumers async``.
"""

from channelworks import Group


def echo_connect(message):
    message.reply_channel.send({"accept": True})


def echo_receive(message):
    message.reply_channel.send({"text": message["text"]})


def broadcast_connect(message, group):
    Group(f"bench-{group}").add(message.reply_channel)
    message.reply_channel.send({"accept": True})


def broadcast_receive(message, group):
    Group(f"bench-{group}").send({"text": message["text"]})


def broadcast_disconnect(message, group):
    Group(f"bench-{group}").discard(message.reply_channel)


async def async_echo_connect(message):
    await message.reply_channel.asend({"accept": True})


async def async_echo_receive(message):
    await message.reply_channel.asend({"text": message["text"]})


async def async_broadcast_connect(message, group):
    await Group(f"bench-{group}").aadd(message.reply_channel)
    await message.reply_channel.asend({"accept": True})


async def async_broadcast_receive(message, group):
    await Group(f"bench-{group}").asend({"text": message["text"]})


async def async_broadcast_disconnect(message, group):
    await Group(f"bench-{group}").adiscard(message.reply_channel)
