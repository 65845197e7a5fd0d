"""Channels' channel and group name rules, with errors that say what is allowed."""

from __future__ import annotations

import re

from channelworks.exceptions import InvalidChannelName, InvalidGroupName

MAX_NAME_LENGTH = 100
_CHANNEL_NAME = re.compile(r"^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$")
_GROUP_NAME = re.compile(r"^[a-zA-Z\d\-_.]+$")
_ALLOWED = (
    f"names are strings shorter than {MAX_NAME_LENGTH} characters made of ASCII letters, digits, "
    "hyphens, underscores and periods"
)


def require_valid_channel_name(name: object) -> str:
    """Return ``name`` if it is a valid channel name, else raise ``InvalidChannelName``."""
    if not isinstance(name, str):
        raise InvalidChannelName(
            f"channel name must be a str, not {type(name).__name__}: {_ALLOWED}"
        )
    if len(name) >= MAX_NAME_LENGTH:
        raise InvalidChannelName(f"channel name {name[:40]!r}... is {len(name)} long: {_ALLOWED}")
    if not _CHANNEL_NAME.match(name):
        raise InvalidChannelName(
            f"invalid channel name {name!r}: {_ALLOWED} (one '!' may separate a process-specific "
            "suffix)"
        )
    return name


def require_valid_group_name(name: object) -> str:
    """Return ``name`` if it is a valid group name, else raise ``InvalidGroupName``."""
    if not isinstance(name, str):
        raise InvalidGroupName(f"group name must be a str, not {type(name).__name__}: {_ALLOWED}")
    if len(name) >= MAX_NAME_LENGTH:
        raise InvalidGroupName(f"group name {name[:40]!r}... is {len(name)} long: {_ALLOWED}")
    if not _GROUP_NAME.match(name):
        raise InvalidGroupName(f"invalid group name {name!r}: {_ALLOWED}")
    return name


def is_process_specific(channel: str) -> bool:
    """True for ``prefix!suffix`` channels, which only the process that made them reads."""
    return "!" in channel


def split_process_specific(channel: str) -> tuple[str, str]:
    """``"specific.abc!xyz"`` -> ``("specific.abc!", "xyz")``."""
    head, _, local = channel.partition("!")
    return head + "!", local


def loggable(channel: str) -> str:
    """A channel name as logs show it: a process-specific channel (a socket's reply channel)
    keeps its process part and the last 4 characters of the rest, enough to follow one socket
    through a log without writing down the whole name, which anyone could send to."""
    if not is_process_specific(channel):
        return channel
    head, local = split_process_specific(channel)
    return f"{head}...{local[-4:]}"


_PROCESS_ID = re.compile(r"([0-9a-f]{12})!$")


def process_of(head: str) -> str:
    """The process id in ``"<prefix><process>!"`` (``new_channel`` makes 12 hex digits), so
    every prefix a process used for ``new_channel`` maps to its one inbox; other heads are
    their own process."""
    match = _PROCESS_ID.search(head)
    return match.group(1) if match else head
