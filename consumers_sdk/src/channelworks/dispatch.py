"""Running one message through the routing: what a worker (and the testing kit) does per message.

1. Route: find the consumer for the channel and the message's fields (none: ``unrouted``).
2. Call it: a plain function in a thread of the given executor, or of the given threads (an
   object with ``async def run(function, *args)``, as the worker's), or in the calling thread for
   :meth:`Runner.dispatch_sync`), with Django's database connections closed before and after
   when they are stale, as Django does per request (skipped while the process has never opened
   one: nothing could be stale); an ``async def`` consumer on the loop.
3. Send what it held back (``Channel.send``/``Group.send`` without ``immediately``), in order,
   whether it returned or raised, as Channels 1 did.

Channels 1 control-flow exceptions are honoured: ``DenyConnection`` in ``websocket.connect``
rejects the connection, ``ChannelSocketException.run(message)`` answers the socket itself,
``ConsumeLater`` puts the message back on its channel (at most ``MAX_RETRIES`` times).
Any other exception is returned in the :class:`Outcome`, never raised: ``SystemExit`` and
``KeyboardInterrupt`` too (argparse and click raise ``SystemExit`` on bad input; one message must
not end the worker). A ``websocket.connect`` consumer that fails closes its socket at once with
1011 (internal error; accepted first, so a browser sees the code), instead of leaving the client
waiting until the interface gives up on an answer. An ``async def`` consumer that lets a
``CancelledError`` of its own escape is reported as ``exceptions.ConsumerCancelled`` and its socket
is closed; a cancellation of the running task (the worker's time limit, the end of a drain) still
propagates.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from asgiref.sync import async_to_sync
from django.db import close_old_connections
from django.db.backends.signals import connection_created

from channelworks import asgi, bridge, decorating, exceptions, pending, routing, signals
from channelworks import message as message_module

MAX_RETRIES = 10
RETRIES_KEY = "__retries__"
CONNECT_CHANNEL = "websocket.connect"
# What a socket whose connect consumer failed is sent: accepted, then closed with 1011 (RFC 6455:
# the server met a condition that kept it from fulfilling the request).
FAILED_CONNECT_REPLY = {"accept": True, "close": 1011}

Status = Literal["ok", "error", "unrouted"]


@dataclass(frozen=True)
class Outcome:
    """How handling one message went; ``route`` names the route that matched."""

    channel: str
    status: Status
    route: str | None = None
    error: BaseException | None = None


Held = list[pending.PendingSend]
T = TypeVar("T")


class _DatabaseUse:
    """Whether this process has opened a database connection yet (Django's
    ``connection_created``, sent from the thread that connects, before its first query).

    Until then ``close_old_connections`` has nothing to close, so a consumer that uses no database
    skips its two calls per message (about 5 µs each). Django's connections belong to the thread
    that opened them, and the worker's consumer threads open theirs after this module is
    imported, so none of theirs is missed (a thread that connected before the import and then
    ran consumers would not have its connection checked until some connection is opened)."""

    opened = False

    @classmethod
    def note(cls, **_: Any) -> None:
        cls.opened = True


connection_created.connect(_DatabaseUse.note, dispatch_uid="channelworks.dispatch.database_use")


class Threads(Protocol):
    """Threads that run a sync call for the event loop awaiting it (the worker's)."""

    async def run(self, function: Callable[..., T], *args: Any) -> T: ...


class Runner:
    """Routes and runs messages taken from ``layer`` (a backend or ``ChannelLayerWrapper``)."""

    def __init__(
        self,
        router: routing.Router,
        layer: Any,
        executor: Executor | Threads | None = None,
        close_connections: bool = True,
    ) -> None:
        self.router = router
        self.layer = asgi.wrap(layer)
        self._executor = executor
        self._close_connections = close_connections
        # Whether each routed consumer is async, asked once per consumer rather than per message
        # (inspect checks): by id, holding the consumer so its id is not reused.
        self._async_consumers: dict[int, tuple[Any, bool]] = {}
        # Each route's name for outcomes, and its "ok" outcome per channel (frozen, so shared),
        # made once per route rather than per message.
        self._route_names: dict[int, tuple[Any, str, dict[str, Outcome]]] = {}

    def _is_async(self, consumer: Any) -> bool:
        known = self._async_consumers.get(id(consumer))
        if known is None or known[0] is not consumer:
            known = (consumer, decorating.is_async(consumer))
            self._async_consumers[id(consumer)] = known
        return known[1]

    def resolve(
        self, channel: str, content: dict[str, Any]
    ) -> tuple[message_module.Message, routing.Resolution | None]:
        message = message_module.Message(content, channel, self.layer)
        return message, self.router.resolve(channel, content)

    def runs_on_the_loop(self, found: routing.Resolution) -> bool:
        """Whether the consumer ``found`` is ``async def`` (runs on the loop, not a thread)."""
        return self._is_async(found.consumer)

    async def dispatch(self, channel: str, content: dict[str, Any]) -> Outcome:
        """Handle one message from async code; sync consumers run on the executor."""
        message, found = self.resolve(channel, content)
        if found is None:
            return Outcome(channel, "unrouted")
        return await self.run(channel, message, found)

    async def run(
        self,
        channel: str,
        message: message_module.Message,
        found: routing.Resolution,
        before_sends: Callable[[Held], None] | None = None,
    ) -> Outcome:
        """Handle a message :meth:`resolve` found a route for, from async code.

        ``before_sends`` is given what the consumer held back once it has returned (or
        raised), right before that is sent (the worker queues the message's ack then, to go
        out with a single reply)."""
        if self._is_async(found.consumer):
            held, error = await self._call_async(found, message)
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            if self._executor is None or isinstance(self._executor, Executor):
                held, error = await loop.run_in_executor(
                    self._executor, context.run, self._call_sync, found, message, loop
                )
            else:
                held, error = await self._executor.run(
                    context.run, self._call_sync, found, message, loop
                )
        if before_sends is not None:
            before_sends(held)
        try:
            await pending.flush(held)
        except Exception as flush_error:
            error = error or flush_error
        return self._outcome(channel, found, error)

    def _outcome(
        self, channel: str, found: routing.Resolution, error: BaseException | None
    ) -> Outcome:
        known = self._route_names.get(id(found.route))
        if known is None or known[0] is not found.route:
            known = (found.route, str(found.route), {})
            self._route_names[id(found.route)] = known
        if error is not None:
            return Outcome(channel, "error", known[1], error)
        ok = known[2].get(channel)  # the same every time: made once per route and channel
        if ok is None:
            ok = known[2][channel] = Outcome(channel, "ok", known[1])
        return ok

    def dispatch_sync(self, channel: str, content: dict[str, Any]) -> Outcome:
        """Handle one message from sync code, in this thread (what the testing kit uses)."""
        message, found = self.resolve(channel, content)
        if found is None:
            return Outcome(channel, "unrouted")
        if self._is_async(found.consumer):
            held, error = async_to_sync(self._call_async)(found, message)
        else:
            held, error = self._call_sync(found, message, None)
        try:
            pending.flush_sync(held)
        except Exception as flush_error:
            error = error or flush_error
        return self._outcome(channel, found, error)

    def _call_sync(
        self,
        found: routing.Resolution,
        message: message_module.Message,
        loop: asyncio.AbstractEventLoop | None,
    ) -> tuple[Held, BaseException | None]:
        error: BaseException | None = None
        with bridge.home(loop), pending.collecting() as held:
            if self._close_connections and _DatabaseUse.opened:
                close_old_connections()
            signals.consumer_started.send(sender=Runner, message=message)
            try:
                found.consumer(message, **found.kwargs)
            except Exception as raised:
                error = self._control_flow(raised, message, held)
            except BaseException as raised:  # SystemExit (argparse, click), KeyboardInterrupt...
                error = raised  # ...from one message must not end the worker
            finally:
                signals.consumer_finished.send(sender=Runner, message=message)
                if self._close_connections and _DatabaseUse.opened:
                    close_old_connections()
            self._close_failed_connect(error, message, held)
        return held, error

    async def _call_async(
        self, found: routing.Resolution, message: message_module.Message
    ) -> tuple[Held, BaseException | None]:
        error: BaseException | None = None
        with pending.collecting() as held:
            signals.consumer_started.send(sender=Runner, message=message)
            try:
                await found.consumer(message, **found.kwargs)
            except Exception as raised:
                error = self._control_flow(raised, message, held)
            except asyncio.CancelledError as raised:
                if _cancelled_from_outside():
                    raise  # the worker gave up on it (time limit, end of a drain)
                error = self._escaped_cancellation(raised, message, held)
            except BaseException as raised:  # SystemExit, KeyboardInterrupt...: contained
                error = raised
            finally:
                signals.consumer_finished.send(sender=Runner, message=message)
            self._close_failed_connect(error, message, held)
        return held, error

    def _escaped_cancellation(
        self, raised: asyncio.CancelledError, message: message_module.Message, held: Held
    ) -> BaseException:
        """An async consumer let a ``CancelledError`` of its own escape (nobody cancelled it):
        its connection would wait forever for an answer, so the socket is closed."""
        error = exceptions.ConsumerCancelled(
            f"the consumer of {message.channel.name} let CancelledError escape "
            "(nothing cancelled it); closing its connection"
        )
        error.__cause__ = raised
        reply = message.reply_channel
        name = message.channel.name
        if reply is not None and name.startswith("websocket.") and name != CONNECT_CHANNEL:
            backend = self.layer.channel_layer
            held.append(pending.PendingSend(backend, "channel", reply.name, {"close": True}))
        return error

    def _close_failed_connect(
        self, error: BaseException | None, message: message_module.Message, held: Held
    ) -> None:
        """A ``websocket.connect`` consumer failed: close its socket with 1011 now (what it held
        back is sent first, so an accept it sent before failing is kept in order)."""
        reply = message.reply_channel
        if error is None or reply is None or message.channel.name != CONNECT_CHANNEL:
            return
        backend = self.layer.channel_layer
        held.append(pending.PendingSend(backend, "channel", reply.name, dict(FAILED_CONNECT_REPLY)))

    def _control_flow(
        self, raised: Exception, message: message_module.Message, held: Held
    ) -> BaseException | None:
        """Act on Channels 1's control-flow exceptions; return the error left to report."""
        backend = self.layer.channel_layer
        if isinstance(raised, exceptions.DenyConnection):
            if message.channel.name != "websocket.connect" or message.reply_channel is None:
                return ValueError(
                    "DenyConnection can only be raised by a websocket.connect consumer"
                )
            reply = message.reply_channel.name
            held.append(pending.PendingSend(backend, "channel", reply, {"close": True}))
            return None
        if isinstance(raised, exceptions.ChannelSocketException):
            try:
                raised.run(message)
            except Exception as failed:
                return failed
            return None
        if isinstance(raised, exceptions.ConsumeLater):
            retries = int(message.content.get(RETRIES_KEY, 0)) + 1
            if retries > MAX_RETRIES:
                return exceptions.ConsumeLater(
                    f"gave up on a message on {message.channel.name} after {MAX_RETRIES} retries"
                )
            content = {**message.content, RETRIES_KEY: retries}
            held.append(pending.PendingSend(backend, "channel", message.channel.name, content))
            return None
        return raised


def _cancelled_from_outside() -> bool:
    """Whether the running task was asked to cancel (not merely a CancelledError raised)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
