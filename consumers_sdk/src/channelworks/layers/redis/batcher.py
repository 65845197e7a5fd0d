"""Coalesces concurrent commands into pipelines, and same-slot script calls into one EVAL.

Every non-blocking command of a layer goes through here, so a thousand concurrent operations
become a handful of round trips on a handful of connections. A call that finds nothing in flight
goes out at once from its caller's task; calls made meanwhile go out together next. A command
that need not go out at once (the delete of what a reader took) can *ride* in front of the next
call to its server, so it costs no write of its own. The calls run on the layer's own
connections (``Clients.caller``: a line per standalone server, one exchange per master on a
cluster).
Connection failures are retried with backoff for a bounded time, then surface as
``LayerConnectionError`` naming the address.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as redis_errors

from channelworks.exceptions import LayerConnectionError
from channelworks.layers.redis.connection import Client, Clients
from channelworks.layers.redis.scripts import Batch

logger = logging.getLogger(__name__)

RETRYABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    redis_errors.ReadOnlyError,
    redis_errors.AskError,  # a slot on the move (MOVED is one too): soon served again
    OSError,
)


def is_retryable(error: BaseException) -> bool:
    """Worth retrying: the server is away or busy failing over, not refusing us."""
    if isinstance(error, redis_errors.AuthenticationError | redis_errors.AuthorizationError):
        return False
    if isinstance(error, RETRYABLE):
        return True
    return isinstance(error, redis_errors.ResponseError) and str(error).startswith(
        ("CLUSTERDOWN", "LOADING", "MASTERDOWN", "TRYAGAIN", "READONLY")
    )


# The arguments of ``Batcher.script``: tag, batch, shared keys, shared args, keys, args.
BatchCall = tuple[str, Batch, Sequence[str], Sequence[Any], Sequence[str], Sequence[Any]]


@dataclass
class _Command:
    args: tuple[Any, ...]
    future: asyncio.Future[Any] | None  # None: nobody waits for the reply (see enqueue_merged)
    merges: bool = False  # see Batcher.enqueue_merged
    early: bool = False
    late: bool = False


@dataclass
class _BatchItem:
    batch: Batch
    shared_keys: tuple[str, ...]
    shared_args: tuple[Any, ...]
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


@dataclass
class _Flush:
    commands: list[_Command] = field(default_factory=list)
    batches: list[_BatchItem] = field(default_factory=list)
    # Set as the pipeline is written (see enqueue_merged_unanswered); made on first use.
    written: asyncio.Future[None] | None = None


class Batcher:
    """One per event loop and layer."""

    def __init__(self, clients: Clients, retry_seconds: float) -> None:
        self._clients = clients
        self._retry_seconds = retry_seconds
        # Per route (a server, or a cluster master): what waits, and the task sending it.
        self._pending: dict[Hashable, tuple[Client, _Flush]] = {}
        self._runners: dict[Hashable, asyncio.Task[None]] = {}
        self._riders: dict[str, list[_Command]] = {}  # by hash tag, which never moves
        self._alone_busy = False

    async def command(self, tag: str, *args: Any) -> Any:
        """Run one command on the client holding ``tag``."""
        if self._idle():
            (result,) = await self._alone(tag, [args], {})
            if isinstance(result, Exception):
                raise result
            return result
        return await self.enqueue(tag, *args)

    def enqueue(self, tag: str, *args: Any) -> asyncio.Future[Any]:
        """Queue one command now (no fast path), so it goes out before anything called later."""
        future = asyncio.get_running_loop().create_future()
        self._queue(tag).commands.append(_Command(args, future))
        return future

    def enqueue_merged(
        self, tag: str, *args: Any, early: bool = False, late: bool = False
    ) -> asyncio.Future[Any]:
        """Queue a command whose arguments after the key are items (``XDEL key id...``,
        ``HSET key field value...``): the ones queued for one pipeline with the same command
        and key go out as one command, and each caller gets its reply (the total). What a
        worker acks in one loop turn costs one XDEL per stream and one HDEL per shard instead
        of two commands per message.

        The merged command stands where the last of them was queued, or with ``early`` where
        the first was, or with ``late`` after everything else of its pipeline (the script
        calls included, which otherwise follow the plain commands): a worker queues a
        message's ack before the message's replies, and the ack still goes out behind them.
        Only for commands that may move that way: a delete may go later (nothing queued after
        it is about what it deletes), a record of a new item may go earlier (nothing queued
        before it is about that item), never the other way round."""
        future = asyncio.get_running_loop().create_future()
        command = _Command(args, future, merges=True, early=early, late=late and not early)
        self._queue(tag).commands.append(command)
        return future

    def enqueue_merged_unanswered(
        self, tag: str, *args: Any, early: bool = False
    ) -> asyncio.Future[None]:
        """:meth:`enqueue_merged` for a command whose reply nobody waits for (a worker's record
        of a hand-out): no future per call to make, settle and look at; a failure is logged.
        Returns a future, shared by everything in that pipeline, done once the pipeline is
        being written: what its caller does after awaiting it happens after the command left
        (a record reaches Redis even when the process is killed right after)."""
        flush = self._queue(tag)
        flush.commands.append(_Command(args, None, merges=True, early=early))
        if flush.written is None:
            flush.written = asyncio.get_running_loop().create_future()
        return flush.written

    @property
    def one_route(self) -> bool:
        """Whether every call goes out on one connection (one standalone server), so what is
        queued for one pipeline reaches Redis in the pipeline's order, whatever its keys."""
        return self._clients.one_route

    def ride(self, tag: str, *args: Any) -> asyncio.Future[Any]:
        """Queue one command to ride in front of the next call to the server holding ``tag``
        (the fast path's included), so it costs no write of its own and reaches Redis before
        that call. What no call has carried yet, the caller takes back (``take_back``) and sends
        itself."""
        future = asyncio.get_running_loop().create_future()
        self._riders.setdefault(tag, []).append(_Command(args, future))
        return future

    def take_back(self, tag: str) -> list[tuple[tuple[Any, ...], asyncio.Future[Any]]]:
        """The commands ``ride`` queued for ``tag`` that no call carried, with their futures,
        for the caller to send and settle."""
        return [
            (rider.args, rider.future)
            for rider in self._riders.pop(tag, [])
            if rider.future is not None  # always: ride() makes one
        ]

    def _riders_for(self, route: Hashable) -> list[_Command]:
        """Take the riders for the server (or master) of ``route``."""
        if not self._riders:
            return []
        tags = [tag for tag in self._riders if self._clients.route(tag) == route]
        return [rider for tag in tags for rider in self._riders.pop(tag)]

    async def script(
        self,
        tag: str,
        script: Batch,
        shared_keys: Sequence[str],
        shared_args: Sequence[Any],
        keys: Sequence[str] = (),
        args: Sequence[Any] = (),
    ) -> Any:
        """Run one item of a batch; items with the same shared part share their commands."""
        if self._idle():
            all_args = [*shared_args, *args]
            calls = script.calls([*shared_keys, *keys], all_args)
            replies = await self._alone(tag, calls, script.sources)
            return script.split(replies, all_args, 1)[0]
        future = asyncio.get_running_loop().create_future()
        self._queue(tag).batches.append(
            _BatchItem(
                script, tuple(shared_keys), tuple(shared_args), tuple(keys), tuple(args), future
            )
        )
        return await future

    async def scripts(self, calls: Sequence[BatchCall]) -> list[Any]:
        """Several ``script`` calls that go out together (no fast path for the first)."""
        futures = []
        for tag, script, shared_keys, shared_args, keys, args in calls:
            future = asyncio.get_running_loop().create_future()
            self._queue(tag).batches.append(
                _BatchItem(
                    script, tuple(shared_keys), tuple(shared_args), tuple(keys), tuple(args), future
                )
            )
            futures.append(future)
        return list(await asyncio.gather(*futures))

    async def check(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Run ``(tag, command)`` calls in the next pipelines, as any other (retried while Redis
        is away); raise the first error. For readiness: the caller bounds the wait, and giving
        up only drops the futures, never an exchange in flight."""
        await asyncio.gather(*(self.enqueue(tag, *call) for tag, call in calls))

    def _idle(self) -> bool:
        """Nothing in flight or waiting: a call can go out at once, from its caller's task."""
        return not self._alone_busy and not self._pending and not self._runners

    async def _alone(
        self, tag: str, calls: list[tuple[Any, ...]], sources: dict[str, str]
    ) -> list[Any]:
        """The fast path: calls with no batch to join skip the queue and the runner task (an
        error reply comes back in place). Calls made meanwhile queue up and go out together
        once it is back."""
        self._alone_busy = True
        client = self._clients.for_tag(tag)
        riders = self._riders_for(self._clients.route(tag))
        try:
            results = await self._execute(
                client, [*(rider.args for rider in riders), *calls], sources
            )
        except BaseException as error:
            for rider in riders:
                _fail(rider.future, error)
            raise
        finally:
            self._alone_busy = False
            for route in list(self._pending):
                self._start_runner(route)
        for rider, outcome in zip(riders, results, strict=False):
            settle(rider.future, outcome)
        return results[len(riders) :]

    def _queue(self, tag: str) -> _Flush:
        route = self._clients.route(tag)
        entry = self._pending.get(route)
        if entry is None:
            entry = self._pending[route] = (self._clients.for_tag(tag), _Flush())
        if not self._alone_busy:
            self._start_runner(route)
        return entry[1]

    def _start_runner(self, route: Hashable) -> None:
        if route not in self._runners:
            self._runners[route] = asyncio.get_running_loop().create_task(self._run(route))

    async def _run(self, route: Hashable) -> None:
        """Send what waits for one route, batch after batch, apart from the other routes (one
        slow master does not hold the others up)."""
        try:
            while (entry := self._pending.pop(route, None)) is not None:
                client, flush = entry
                flush.commands[:0] = self._riders_for(route)
                if flush.written is not None and not flush.written.done():
                    # Its awaiters resume on a later loop turn; this task writes the pipeline
                    # in this one (at once on a connected line).
                    flush.written.set_result(None)
                await self._flush(client, flush)
        finally:
            del self._runners[route]

    async def _flush(self, client: Client, flush: _Flush) -> None:
        commands, late = _merge_commands(flush.commands)
        merged = _merge_batches(flush.batches)
        calls: list[tuple[Any, ...]] = [args for args, _ in commands]
        sources: dict[str, str] = {}
        for batch in merged:
            calls += batch.calls
            sources.update(batch.items[0].batch.sources)
        calls += [args for args, _ in late]
        try:
            results = await self._execute(client, calls, sources)
        except BaseException as error:
            for command in flush.commands:
                _fail(command.future, error)
            for batch in merged:
                for item in batch.items:
                    _fail(item.future, error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, futures), result in zip(commands, results, strict=False):
            for future in futures:
                settle(future, result)
        for (_, futures), result in zip(late, results[len(calls) - len(late) :], strict=True):
            for future in futures:
                settle(future, result)
        start = len(commands)
        for batch in merged:
            replies = results[start : start + len(batch.calls)]
            start += len(batch.calls)
            try:
                item_results = batch.items[0].batch.split(replies, batch.args, len(batch.items))
            except Exception as error:
                for item in batch.items:
                    _fail(item.future, error)
                continue
            for item, item_result in zip(batch.items, item_results, strict=True):
                settle(item.future, item_result)

    async def _execute(
        self, client: Client, calls: list[tuple[Any, ...]], sources: dict[str, str]
    ) -> list[Any]:
        """Run ``calls`` in one pipeline; retry the ones that failed for a retryable reason.

        A script the server does not know yet (new server, restart, failover) is sent again
        with its source at once."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        deadline = time.monotonic() + self._retry_seconds
        delay = 0.05
        while True:
            try:
                outcomes = await self._clients.caller(client)([calls[index] for index in todo])
            except Exception as error:
                if not is_retryable(error):
                    raise
                outcomes = [error] * len(todo)
            failed = []
            unknown_scripts = []
            for index, outcome in zip(todo, outcomes, strict=True):
                results[index] = outcome
                if isinstance(outcome, redis_errors.NoScriptError):
                    calls[index] = _with_source(calls[index], sources)
                    unknown_scripts.append(index)
                elif isinstance(outcome, Exception) and is_retryable(outcome):
                    failed.append(index)
            if unknown_scripts and not failed:
                todo = unknown_scripts
                continue
            failed += unknown_scripts
            if not failed:
                return results
            cause: Exception = results[failed[0]]
            if time.monotonic() + delay > deadline:
                raise LayerConnectionError(
                    f"cannot reach Redis at {self._clients.address_of(client)} after "
                    f"retrying for {self._retry_seconds:.0f}s: {cause}"
                ) from cause
            logger.info("Redis unavailable (%s); retrying in %.2fs", cause, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            todo = failed


_Call = tuple[tuple[Any, ...], list[asyncio.Future[Any] | None]]


def _merge_commands(commands: list[_Command]) -> tuple[list[_Call], list[_Call]]:
    """The commands to send, each with the futures its reply settles: mergeable ones with the
    same command and key as one, where the last (or, ``early``, the first) of them stands; the
    others as they are. Those to send before the script calls, and those to send after them
    (a merged command goes last when any of its parts is ``late``)."""
    if not any(command.merges for command in commands):
        return [(command.args, [command.future]) for command in commands], []
    items: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    futures: dict[tuple[Any, ...], list[asyncio.Future[Any] | None]] = defaultdict(list)
    stands: dict[tuple[Any, ...], int] = {}
    late: set[tuple[Any, ...]] = set()
    for position, command in enumerate(commands):
        if command.merges:
            head = command.args[:2]
            items[head].extend(command.args[2:])
            futures[head].append(command.future)
            if not (command.early and head in stands):
                stands[head] = position
            if command.late:
                late.add(head)
    out: list[_Call] = []
    last: list[_Call] = []
    for position, command in enumerate(commands):
        if not command.merges:
            out.append((command.args, [command.future]))
        elif stands[head := command.args[:2]] == position:
            (last if head in late else out).append(((*head, *items[head]), futures[head]))
    return out, last


@dataclass
class _Merged:
    """Items of one batch and shared part, as the commands that carry them all."""

    items: list[_BatchItem]
    args: list[Any]
    calls: list[tuple[Any, ...]]


def _merge_batches(items: list[_BatchItem]) -> list[_Merged]:
    """Items of the same batch and shared part -> one set of commands each."""
    groups: dict[tuple[Any, ...], list[_BatchItem]] = defaultdict(list)
    for item in items:
        groups[(item.batch.name, item.shared_keys, item.shared_args)].append(item)
    merged = []
    for members in groups.values():
        first = members[0]
        keys = list(first.shared_keys) + [key for item in members for key in item.keys]
        args = list(first.shared_args) + [arg for item in members for arg in item.args]
        merged.append(_Merged(members, args, first.batch.calls(keys, args)))
    return merged


def _with_source(call: tuple[Any, ...], sources: dict[str, str]) -> tuple[Any, ...]:
    """An EVALSHA call as EVAL, for a server that does not know the script yet."""
    return ("EVAL", sources[call[1]], *call[2:])


def settle(future: asyncio.Future[Any] | None, result: Any) -> None:
    """Give ``future`` a reply, or raise the error reply through it (unless already settled);
    with no future (nobody waits), log an error reply."""
    if future is None:
        if isinstance(result, BaseException):
            logger.info("a queued command failed (%s)", result)
        return
    if future.done():
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


def _fail(future: asyncio.Future[Any] | None, error: BaseException) -> None:
    if future is None:
        logger.info("a queued command failed (%s)", error)
    elif not future.done():
        future.set_exception(error)
