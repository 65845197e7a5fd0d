"""Watching a liveblog: each socket joins the liveblog's group; ``Post.save()`` sends to it."""

from typing import Any

from blog.models import Liveblog
from channelworks import Group


def watch(message: Any, slug: str) -> None:
    if not Liveblog.objects.filter(slug=slug).exists():
        message.reply_channel.send({"close": True})  # no such liveblog: refuse (403)
        return
    message.reply_channel.send({"accept": True})
    Group(f"liveblog-{slug}").add(message.reply_channel)


def stop_watching(message: Any, slug: str) -> None:
    Group(f"liveblog-{slug}").discard(message.reply_channel)


def refuse(message: Any, **kwargs: Any) -> None:
    message.reply_channel.send({"close": True})
