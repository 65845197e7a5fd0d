"""What the worker does with a message before and instead of running it (pure, no I/O).

- An ``http.request`` handed out a second time (its first worker died or gave it up while running
  it) is run again only if its method is idempotent (``retry_methods``, by default GET, HEAD,
  OPTIONS); otherwise the client gets a 502 and the request is not run: HTTP is at most once.
- A message handed out more than ``max_deliveries`` times (every worker that took it died) is not
  run; it goes to the dead-letter channel, and its connection is answered (HTTP 502, socket
  closed) so the rest of its shard and its connection move on.
- A message whose consumer outlives ``time_limit`` seconds (or its channel's own limit) is given
  up the same way (reason ``time_limit``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

HTTP_CHANNEL = "http.request"
DEFAULT_RETRY_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_DEAD_LETTER_CHANNEL = "channelworks.dead_letters"
REASON_MAX_DELIVERIES = "max_deliveries"
REASON_TIME_LIMIT = "time_limit"


class Verdict(enum.Enum):
    RUN = "run"
    NOT_RETRIED = "not_retried"  # a non-idempotent HTTP request that already ran (in part)
    DEAD_LETTER = "dead_letter"  # delivered too many times


@dataclass(frozen=True)
class Safeguards:
    """The limits one worker applies (from ``WorkerConfig``; see docs/worker.md)."""

    max_deliveries: int = 3
    dead_letter_channel: str = DEFAULT_DEAD_LETTER_CHANNEL
    time_limit: float = 60.0
    retry_methods: tuple[str, ...] = DEFAULT_RETRY_METHODS
    channel_time_limits: tuple[tuple[str, float], ...] = ()  # overrides of time_limit

    def time_limit_for(self, channel: str) -> float:
        """How long a message on ``channel`` may run."""
        for name, seconds in self.channel_time_limits:
            if name == channel:
                return seconds
        return self.time_limit

    def verdict(self, channel: str, message: dict[str, Any], delivery: int) -> Verdict:
        """Whether to run a message on its ``delivery``-th hand-out (1 the first time)."""
        if delivery > 1 and channel == HTTP_CHANNEL and not self.may_retry(message):
            return Verdict.NOT_RETRIED
        if delivery > self.max_deliveries:
            return Verdict.DEAD_LETTER
        return Verdict.RUN

    def may_retry(self, message: dict[str, Any]) -> bool:
        """Whether an ``http.request`` may run again after a worker died running it."""
        method = message.get("method")
        return isinstance(method, str) and method.upper() in self.retry_methods


def dead_letter(
    channel: str, message: dict[str, Any], deliveries: int, reason: str
) -> dict[str, Any]:
    """What goes to the dead-letter channel: the message, where it came from, and why."""
    return {"channel": channel, "message": message, "deliveries": deliveries, "reason": reason}


def http_error(status: int, text: str) -> dict[str, Any]:
    """A whole plain-text HTTP response, in the reply format of the interface."""
    return {
        "status": status,
        "headers": [[b"content-type", b"text/plain; charset=utf-8"]],
        "content": text.encode("utf-8") + b"\n",
        "more_content": False,
    }


def answer_for_given_up(channel: str, message: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The reply (channel, content) that tells a connection its message was given up: a 502 to
    an HTTP request, a close to a socket still open; None when there is no one to tell."""
    reply_channel = message.get("reply_channel")
    if not isinstance(reply_channel, str):
        return None
    if channel == HTTP_CHANNEL:
        return reply_channel, http_error(502, "The application failed to handle this request")
    if channel in ("websocket.connect", "websocket.receive"):
        return reply_channel, {"close": True}
    return None


def answer_not_retried(message: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The 502 for an ``http.request`` that was not run again after its worker died."""
    reply_channel = message.get("reply_channel")
    if not isinstance(reply_channel, str):
        return None
    text = (
        f"The worker handling this {message.get('method', '')} request stopped before answering;"
        " it was not run again because it may not be safe to repeat"
    )
    return reply_channel, http_error(502, text)
