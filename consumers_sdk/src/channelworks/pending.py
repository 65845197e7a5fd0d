"""Sends held back until the running consumer returns (Channels 1's ``immediately=False``).

Inside a consumer, ``Channel.send`` and ``Group.send`` are collected and sent, in order, when the
consumer finishes (also when it raised, as in Channels 1), so a consumer's replies leave together
and before the next message of the same connection is handled. Outside a consumer, or with
``immediately=True``, sends go out at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass
from typing import Any, Literal

from channelworks import bridge, exceptions
from channelworks.layers import base

RETRY_SECONDS = 2.0
RETRY_INTERVAL = 0.1


@dataclass(frozen=True)
class PendingSend:
    """One held-back send: to a channel or a group, on a given layer backend."""

    layer: base.ChannelworksLayer
    kind: Literal["channel", "group"]
    name: str
    content: dict[str, Any]


_held: contextvars.ContextVar[list[PendingSend] | None] = contextvars.ContextVar(
    "channelworks_pending_sends", default=None
)


def active() -> bool:
    """True inside a running consumer (sends are held until it returns)."""
    return _held.get() is not None


def hold(send: PendingSend) -> bool:
    """Keep ``send`` for later if a consumer is running; False means the caller sends now."""
    held = _held.get()
    if held is None:
        return False
    held.append(send)
    return True


class collecting:
    """Hold the sends made in this context; the caller flushes the list it gives afterwards.

    A class rather than a generator context manager: entered around every message a worker
    runs, where the generator's frame and wrapper cost a few µs."""

    __slots__ = ("_token",)

    def __enter__(self) -> list[PendingSend]:
        sends: list[PendingSend] = []
        self._token = _held.set(sends)
        return sends

    def __exit__(self, *exc_info: object) -> None:
        _held.reset(self._token)


async def flush(sends: list[PendingSend]) -> None:
    """Send everything held, in order; a full channel is retried for ``RETRY_SECONDS``."""
    for send in sends:
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                if send.kind == "channel":
                    await send.layer.send(send.name, send.content)
                else:
                    await send.layer.group_send(send.name, send.content)
                break
            except exceptions.ChannelFull:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(RETRY_INTERVAL)


def flush_sync(sends: list[PendingSend]) -> None:
    """:func:`flush` from synchronous code."""
    if sends:
        bridge.call(lambda: flush(sends), "sending a consumer's held messages")
