"""Recovery after reconnect, for one socket whose client speaks the protocol (stream_frames.py).

- **Streams**: a reply stamped with a group stream position (``channelworks.layers.history``)
  goes to the client with its epoch and offset. The interface keeps, per stream, the position
  the client has: a message at or before it is dropped (a duplicate), one after a gap is
  preceded by the missing ones read from the group's history, and a client that reconnects
  with its positions first gets what it missed, then ``recovered`` (or ``gone``), then live
  messages. So the client sees each message once, in order.
- **Sessions**: a socket that follows at least one stream (it got a message of a group with
  history) and drops (not closed on purpose by the client, not closed by the application) is
  *parked* for ``CHANNELWORKS_INTERFACE_RESUME_SECONDS`` instead of reporting
  ``websocket.disconnect`` at once. A client that comes back with its token within that time
  (to any interface process) resumes it: its group memberships move to the new socket, its
  ``channel_session`` stays (messages carry ``session_channel``), and no ``websocket.connect``
  runs. Otherwise the parking process reports the disconnect when the time is up. A socket that
  follows no stream reconnects as in Channels (a new connection, websocket.connect runs): an
  application that did not opt into history keeps the semantics it was written for.

A client that does not ask gets exactly what it got before (positions are taken off replies).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from channelworks.layers import ChannelworksLayer, history
from channelworks_interface import stream_frames
from channelworks_interface.disconnects import DisconnectOutbox

logger = logging.getLogger(__name__)
Send = Callable[[dict[str, Any]], Awaitable[None]]
# Closes after which a session is not kept: the client left on purpose (1000, 1001).
_LEFT_ON_PURPOSE = frozenset({1000, 1001})
# A parked record outlives the wait by this much, so the parking process finds it when the
# wait is over (an expired record would mean a disconnect never reported).
_RECORD_MARGIN_SECONDS = 30.0
_parked: set[asyncio.Task[None]] = set()  # deferred disconnects of this process


class Recovery:
    """One socket's recovery; every method does nothing for a client that did not ask."""

    def __init__(
        self,
        layer: ChannelworksLayer,
        disconnects: DisconnectOutbox,
        request: stream_frames.Request | None,
        send: Send,
        resume_seconds: float,
    ) -> None:
        self._layer = layer
        self._disconnects = disconnects
        self._request = request
        self._send = send
        self._resume_seconds = resume_seconds if layer.supports_recovery else 0.0
        self._positions: dict[str, tuple[str, int]] = dict(request.positions) if request else {}
        self._held: list[dict[str, Any]] = []  # stream messages that came before the accept
        self._open = False
        self._token: str | None = None
        self._resumed = False
        self._reply_channel = ""
        self._path = ""
        self.session_channel: str | None = None

    @classmethod
    def for_scope(
        cls,
        layer: ChannelworksLayer,
        disconnects: DisconnectOutbox,
        scope: MutableMapping[str, Any],
        send: Send,
        resume_seconds: float,
    ) -> tuple[Recovery, MutableMapping[str, Any]]:
        """The recovery of a socket, and its scope without the client's request in it."""
        request, rest = stream_frames.take_request(bytes(scope.get("query_string", b"")))
        if request is not None:
            scope = {**scope, "query_string": rest}
        return cls(layer, disconnects, request, send, resume_seconds), scope

    @property
    def active(self) -> bool:
        return self._request is not None

    # Resuming ----------------------------------------------------------------------------------

    async def resume(self, reply_channel: str, path: str) -> bool:
        """Take over the parked session the client names, if there is one: True when resumed
        (the socket is then accepted by the caller, without a websocket.connect)."""
        self._reply_channel, self._path = reply_channel, path
        request = self._request
        if request is None or request.token is None or not request.positions:
            return False
        if not self._resume_seconds:
            return False
        record = await self._layer.claim_session(request.token)
        if record is None:
            return False
        if record.get("path") != path:
            await _send_disconnect(self._disconnects, record)  # not this socket's: it ends now
            return False
        groups = await self._layer.move_memberships(str(record["channel"]), reply_channel)
        self.session_channel = str(record["session"])
        self._resumed = True
        logger.info("resumed a session on %s (groups: %s)", path, ", ".join(groups) or "none")
        return True

    def annotate(self, message: dict[str, Any]) -> dict[str, Any]:
        """A message to the workers about this socket, saying whose channel session it has."""
        if self.session_channel is not None:
            message["session_channel"] = self.session_channel
        return message

    async def park(self, disconnect: dict[str, Any], code: int, sent_close: int | None) -> bool:
        """Keep the session of a socket that dropped, for its client to resume; True when
        parked (the disconnect is then reported later, if nobody resumes it)."""
        token = self._token
        if token is None or not self._open or not self._positions or code in _LEFT_ON_PURPOSE:
            return False
        if sent_close is not None and sent_close != 1012:  # the application closed it
            return False
        record = {
            "channel": self._reply_channel,
            "session": self.session_channel or self._reply_channel,
            "path": self._path,
            "disconnect": disconnect,
        }
        try:
            await self._layer.park_session(
                token, record, self._resume_seconds + _RECORD_MARGIN_SECONDS
            )
        except Exception:
            logger.warning("could not park a dropped socket's session", exc_info=True)
            return False
        task = asyncio.ensure_future(
            _disconnect_later(self._layer, self._disconnects, token, self._resume_seconds)
        )
        _parked.add(task)
        task.add_done_callback(_parked.discard)
        return True

    # Streams -----------------------------------------------------------------------------------

    async def opened(self) -> None:
        """The socket is open: tell the client its token, send what it missed, then what came
        before the accept."""
        if not self.active:
            return
        if self._resume_seconds:
            self._token = secrets.token_hex(16)
        await self._send(stream_frames.session(self._token, self._resumed))
        for group, (epoch, offset) in list(self._positions.items()):
            await self._catch_up(group, epoch, offset, until=None)
        self._open = True
        held, self._held = self._held, []
        for reply in held:
            await self._deliver(reply)

    async def deliver(self, reply: dict[str, Any]) -> dict[str, Any] | None:
        """Send a reply that carries a stream position; return what else it asks of the socket
        (a close, say) for the caller to apply, or None."""
        if not self.active:
            return history.without_position(reply)
        if not self._open:
            self._held.append(reply)
            return None
        return await self._deliver(reply)

    async def _deliver(self, reply: dict[str, Any]) -> dict[str, Any] | None:
        position = history.position(reply)
        if position is None:
            return history.without_position(reply)
        group, epoch, offset = position
        known = self._positions.get(group)
        if known is not None:
            known_epoch, known_offset = known
            if known_epoch == epoch and offset <= known_offset:
                return None  # the client has it already
            if known_epoch == epoch and offset > known_offset + 1:
                await self._catch_up(group, epoch, known_offset, until=offset - 1)
            elif known_epoch != epoch:
                await self._send(stream_frames.gone(group, epoch, offset - 1))
        for frame in stream_frames.positioned(group, epoch, offset, reply):
            await self._send(frame)
        self._positions[group] = (epoch, offset)
        rest = {
            key: value
            for key, value in reply.items()
            if key not in ("text", "bytes", history.POSITION_FIELD)
        }
        return rest or None

    async def _catch_up(self, group: str, epoch: str, after: int, until: int | None) -> None:
        """Send ``group``'s messages after ``after`` (up to ``until``, else all there are),
        or ``gone`` when they are not all kept; a stream this socket is not (yet) a member of
        is left for its first live message."""
        sent = 0
        while True:
            try:
                read = await self._layer.group_history(group, self._reply_channel, epoch, after)
            except Exception:
                logger.warning("reading the history of %s failed", group, exc_info=True)
                read = history.GONE
            if read.status == "not_member":
                return
            if read.status != "ok":
                await self._send(stream_frames.gone(group, read.epoch, read.latest))
                if read.epoch and until is None:
                    self._positions[group] = (read.epoch, read.latest)
                else:
                    self._positions.pop(group, None)
                return
            for offset, message in read.messages:
                if until is not None and offset > until:
                    break
                for frame in stream_frames.positioned(group, epoch, offset, message):
                    await self._send(frame)
                sent += 1
                after = offset
            self._positions[group] = (epoch, after)
            limit = read.latest if until is None else min(until, read.latest)
            if after >= limit or not read.messages:
                break
        if until is None:
            await self._send(stream_frames.recovered(group, after, sent))


async def _disconnect_later(
    layer: ChannelworksLayer, disconnects: DisconnectOutbox, token: str, seconds: float
) -> None:
    """Report the disconnect of a parked session nobody resumed within ``seconds``."""
    await asyncio.sleep(seconds)
    try:
        record = await layer.claim_session(token)
    except Exception:
        logger.warning("could not claim a parked session to end it", exc_info=True)
        return
    if record is not None:
        await _send_disconnect(disconnects, record)


async def _send_disconnect(disconnects: DisconnectOutbox, record: dict[str, Any]) -> None:
    """Through the process's outbox: sent again until it fits, never dropped (disconnects.py)."""
    message = record.get("disconnect")
    if isinstance(message, dict):
        await disconnects.send(message)
