"""Talking to a Redis Cluster on connections of our own.

redis-py's cluster client routes each call itself, and its pipelines add objects, tasks and
retry wrappers per call: on the development machine the layer's messages cost about twice the
client CPU on a cluster that they cost on a standalone server through ``wire.Line``. Here the
layer routes for itself:

- a ``SlotMap`` knows which master serves each hash slot (from ``CLUSTER SLOTS``), keeps one
  ``Line`` per master, and runs a batch of calls as one exchange per master, all at once;
- a ``MOVED`` reply moves that slot in the map and the call goes again to the new owner; an
  ``ASK`` reply (a slot being migrated) sends it once to the target, after ``ASKING``;
- the map is read again before its next use after a connection failure, a ``CLUSTERDOWN``
  reply, a slot with no owner, or a ``MOVED`` to a node it does not know, at most every
  ``RELOAD_INTERVAL`` while such errors persist (a client that started before the cluster was
  formed finds it formed; a failover is picked up as soon as the replica is promoted);
- the map is read from the nodes that answered last, then from the configured seed addresses
  (host names are resolved again at every connect: a headless Service names the pods of now),
  each asked with the short ``connect_timeout``, so an address that stopped answering costs
  about a second, not the exchange timeout;
- every line reports its exchanges to a ``watch.ServerWatch``: the exchanges waiting on a node
  that stopped answering fail at once and the map is read again (its pod vanished: on a pod
  network nothing refuses the connection, the packets just go unanswered);
- a ``RoutedLine`` is a dedicated connection for the blocking reads of one hash tag, which
  follows that tag's slot from master to master.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Hashable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from channelworks.layers.redis.watch import ServerWatch
from channelworks.layers.redis.wire import Call, Exchange, Line

Address = tuple[str, int]
__all__ = ["RELOAD_INTERVAL", "Address", "RoutedLine", "SlotMap", "first_key", "read_cluster_slots"]
RELOAD_INTERVAL = 0.25  # seconds between two readings of the map while errors persist
_REDIRECTS = 5
_CONNECTION_FAILURES = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
# Commands whose first key is not their first argument.
_KEY_AT_THREE = frozenset({"EVAL", "EVALSHA", "BLMPOP", "LMPOP"})


def first_key(call: Call) -> bytes:
    """The key that decides which node runs ``call`` (our calls touch one hash tag each)."""
    name = str(call[0]).upper()
    if name in _KEY_AT_THREE:
        key = call[3]
    elif name in ("XREAD", "XREADGROUP"):
        key = call[[str(arg).upper() for arg in call].index("STREAMS") + 1]
    else:
        key = call[1]
    return key if isinstance(key, bytes) else str(key).encode()


def read_cluster_slots(
    reply: Sequence[Any], asked: Address
) -> tuple[list[Address | None], list[Address]]:
    """The master of every slot, and every node named (replicas too), from a ``CLUSTER SLOTS``
    reply got from ``asked`` (a node that announces no address is the one that was asked)."""
    owners: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    nodes: dict[Address, None] = {}
    for start, end, *served_by in reply:
        addresses = [_address(node, asked) for node in served_by]
        owners[int(start) : int(end) + 1] = [addresses[0]] * (int(end) - int(start) + 1)
        nodes.update(dict.fromkeys(addresses))
    return owners, list(nodes)


def _address(node: Sequence[Any], asked: Address) -> Address:
    host = node[0].decode() if isinstance(node[0], bytes) else str(node[0])
    return (host or asked[0], int(node[1]))


def _slot_error(slot: int) -> redis_errors.ClusterDownError:
    return redis_errors.ClusterDownError(f"CLUSTERDOWN hash slot {slot} is not served")


class SlotMap:
    """Which master serves each slot, and a connection to each; one per event loop."""

    def __init__(
        self,
        seeds: Sequence[Address],
        node_options: dict[str, Any],
        timeout: float,
        connect_timeout: float,
        silent_after: float = math.inf,
    ) -> None:
        self._seeds = list(seeds)  # as configured: host names are resolved at each connect
        self._known = list(seeds)  # whom to ask: the nodes last named (replicas too), seeds
        self._node_options = node_options
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._owners: list[Address | None] | None = None
        self._stale = False  # read the map again before its next use (rate-limited)
        self._loaded_at = -math.inf
        self._version = 0
        self._reloading = asyncio.Lock()
        self._unreachable: set[Address] = set()
        self._nodes: dict[Address, aioredis.Redis] = {}
        self._lines: dict[Address, tuple[Line, asyncio.Lock]] = {}
        self.server_watch = ServerWatch(
            connect_timeout, self._probe_line, self._gone, silent_after=silent_after
        )

    def node(self, address: Address) -> aioredis.Redis:
        """A (lazily connecting) client for one node, to build lines from."""
        client = self._nodes.get(address)
        if client is None:
            host, port = address
            client = self._nodes[address] = aioredis.Redis(
                host=host, port=port, **self._node_options
            )
        return client

    def route(self, tag: str) -> Address | None:
        """The master believed to serve ``tag`` now, without asking (None: not known yet)."""
        return None if self._owners is None else self._owners[key_slot(tag.encode())]

    async def owner(self, slot: int) -> Address:
        """The master serving ``slot`` now (reads the map first if it has to)."""
        if self._owners is None or (
            self._stale and time.monotonic() - self._loaded_at >= RELOAD_INTERVAL
        ):
            await self.reload()
        assert self._owners is not None
        address = self._owners[slot]
        if address is None:
            self._stale = True  # not formed yet, or a failover under way: look again soon
            raise _slot_error(slot)
        return address

    def moved(self, error: redis_errors.AskError) -> None:
        """Record a ``MOVED`` reply: its slot now lives on the node it names."""
        address = (str(error.host), int(error.port))
        if address not in self._known:
            self._stale = True  # a node we never heard of: the topology changed
        if self._owners is not None:
            self._owners[error.slot_id] = address

    def answered_with(self, error: redis_errors.ResponseError) -> None:
        """An error reply: ``CLUSTERDOWN`` makes the map be read again (rate-limited)."""
        if isinstance(error, redis_errors.ClusterDownError) or str(error).startswith("CLUSTERDOWN"):
            self._stale = True

    def lost(self, address: Address) -> None:
        """A connection to ``address`` failed: read the map again before its next use."""
        self._unreachable.add(address)
        self._owners = None

    async def reload(self) -> None:
        """Ask the nodes, reachable ones first, which master serves each slot."""
        version = self._version
        async with self._reloading:
            if self._version != version and self._owners is not None:
                return  # another task reloaded it while this one waited
            candidates = sorted(self._known, key=lambda address: address in self._unreachable)
            failures: list[str] = []
            for address in candidates:
                try:
                    reply = await self._ask(address, "CLUSTER", "SLOTS")
                except _CONNECTION_FAILURES as error:
                    self._unreachable.add(address)
                    failures.append(f"{address[0]}:{address[1]}: {error}")
                    continue
                self._owners, nodes = read_cluster_slots(reply, address)
                # The nodes named now, then the seeds: addresses of vanished nodes drop out.
                self._known = list(dict.fromkeys([*nodes, *self._seeds]))
                self._unreachable &= set(self._known)
                self._unreachable.discard(address)
                self._stale = False
                self._loaded_at = time.monotonic()
                self._version += 1
                await self._forget_gone_nodes()
                return
            self._loaded_at = time.monotonic()
            raise redis_errors.ConnectionError(
                "no node of the cluster answered CLUSTER SLOTS (" + "; ".join(failures) + ")"
            )

    async def _forget_gone_nodes(self) -> None:
        """Close the connections to addresses the cluster no longer names (a replaced pod's)."""
        known = set(self._known)
        for address in [address for address in self._lines if address not in known]:
            line, _ = self._lines.pop(address)
            await line.close()
        await self.server_watch.forget(set(known))

    def _probe_line(self, server: Hashable) -> Line:
        return Line(self.node(cast(Address, server)), 2 * self._connect_timeout)

    def _gone(self, server: Hashable) -> None:
        self.lost(cast(Address, server))

    async def _ask(self, address: Address, *call: Any) -> Any:
        """One command on a connection of its own, bounded by ``connect_timeout`` twice (to
        connect, then to answer)."""
        line = Line(self.node(address), 2 * self._connect_timeout)
        try:
            return await line.one(*call)
        finally:
            await line.close()

    async def call(self, calls: Sequence[Call]) -> list[Any]:
        """Run ``calls`` (one reply each, errors in place): one exchange per master, at once."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(_REDIRECTS):
            by_owner: dict[Address, list[int]] = {}
            for index in todo:
                try:
                    owner = await self.owner(key_slot(first_key(calls[index])))
                except redis_errors.RedisError as error:
                    results[index] = error
                    continue
                by_owner.setdefault(owner, []).append(index)
            exchanges = [
                self._exchange(address, [calls[index] for index in indices])
                for address, indices in by_owner.items()
            ]
            if len(exchanges) == 1:
                replies = [await exchanges[0]]
            else:
                replies = list(await asyncio.gather(*exchanges))
            todo = []
            for indices, node_replies in zip(by_owner.values(), replies, strict=True):
                for index, reply in zip(indices, node_replies, strict=True):
                    results[index] = reply
                    if isinstance(reply, redis_errors.MovedError):
                        self.moved(reply)
                        todo.append(index)
                    elif isinstance(reply, redis_errors.AskError):
                        results[index] = await self._asking(reply, calls[index])
                    elif isinstance(reply, redis_errors.ResponseError):
                        self.answered_with(reply)
            if not todo:
                break
        return results

    async def _exchange(self, address: Address, calls: list[Call]) -> list[Any]:
        """One exchange with one master (batches for different routes may meet on one master
        when the map changed under them: they take turns)."""
        entry = self._lines.get(address)
        if entry is None:
            line = Line(self.node(address), self._timeout, self.server_watch, address)
            entry = self._lines[address] = (line, asyncio.Lock())
        line, turn = entry
        try:
            async with turn:
                return await line.call(calls)
        except _CONNECTION_FAILURES as error:
            self.lost(address)
            return [error] * len(calls)

    async def _asking(self, error: redis_errors.AskError, call: Call) -> Any:
        """Run ``call`` once on the node a slot is being migrated to."""
        (_, reply) = await self._exchange((str(error.host), int(error.port)), [("ASKING",), call])
        return reply

    async def close(self) -> None:
        await self.server_watch.close()
        lines = [line for line, _ in self._lines.values()]
        self._lines = {}
        for line in lines:
            await line.close()
        nodes, self._nodes = self._nodes, {}
        for client in nodes.values():
            await client.aclose()


class RoutedLine(Exchange):
    """One dedicated connection to whichever master serves a hash tag; one exchange at a time.

    Its calls are for one hash tag, so a slot that moved answers ``MOVED`` to all of them: it
    retargets and the exchange goes again. A connection failure raises (the map reloads before
    the next exchange)."""

    def __init__(self, slots: SlotMap, tag: str, timeout: float) -> None:
        super().__init__()
        self._slots = slots
        self._slot = key_slot(tag.encode())
        self._timeout = timeout
        self._address: Address | None = None
        self._line: Line | None = None

    async def call(self, calls: Sequence[Call], packed: list[bytes] | None = None) -> list[Any]:
        replies: list[Any] = []
        for _ in range(_REDIRECTS):
            address = await self._slots.owner(self._slot)
            line = await self._line_to(address)
            try:
                replies = await line.call(calls, packed)
            except _CONNECTION_FAILURES:
                self._slots.lost(address)
                raise
            for reply in replies:
                if isinstance(reply, redis_errors.ResponseError):
                    self._slots.answered_with(reply)
            if not replies or not all(isinstance(r, redis_errors.MovedError) for r in replies):
                break  # something ran there: it must not run twice
            self._slots.moved(replies[0])
        return replies

    async def _line_to(self, address: Address) -> Line:
        if self._line is None or address != self._address:
            if self._line is not None:
                await self._line.close()
            self._line = Line(
                self._slots.node(address),
                self._timeout,
                self._slots.server_watch,
                address,
                blocking=True,
            )
            self._address = address
        return self._line

    async def close(self) -> None:
        if self._line is not None:
            await self._line.close()
            self._line = None
