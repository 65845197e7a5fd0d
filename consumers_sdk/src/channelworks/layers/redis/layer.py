"""``RedisChannelLayer``: the Channels 4 layer API on one Redis, several, or a Redis Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from channelworks.exceptions import ChannelFull, InvalidChannelName
from channelworks.layers import codec, naming
from channelworks.layers.base import ChannelworksLayer, WorkReceiver
from channelworks.layers.config import layer_config
from channelworks.layers.ordering import ordering_key
from channelworks.layers.redis import connection, load, scripts, sharding
from channelworks.layers.redis.batcher import BatchCall, Batcher
from channelworks.layers.redis.inbox import DirectHandler, Inbox, entry_tail, pack_entry
from channelworks.layers.redis.keys import KeyLayout
from channelworks.layers.redis.plain import PlainReceiver
from channelworks.layers.redis.recovery import RedisRecovery
from channelworks.layers.redis.stats import read_queue_stats
from channelworks.layers.redis.work import RedisWorkReceiver
from channelworks.layers.stats import LoadReport, QueueStats

logger = logging.getLogger(__name__)
DEFAULT_RETRY_SECONDS = 20.0
RECEIVE_WAIT_SECONDS = 60.0  # receive() asks again this often while nothing comes


@dataclass
class _LoopState:
    """Connections and background readers belong to one event loop."""

    clients: connection.Clients
    batcher: Batcher
    process: str = field(default_factory=lambda: secrets.token_hex(6))
    inbox: Inbox | None = None
    plain_receivers: dict[tuple[str, ...], PlainReceiver] = field(default_factory=dict)

    async def close(self) -> None:
        for receiver in self.plain_receivers.values():
            await receiver.close()
        self.plain_receivers.clear()
        if self.inbox is not None:
            await self.inbox.close()
        await self.clients.close()


class RedisChannelLayer(RedisRecovery, ChannelworksLayer):
    """Drop-in for channels_redis' ``RedisChannelLayer`` (same ``CONFIG`` keys), see the docs."""

    def __init__(
        self,
        hosts: Sequence[Any] | None = None,
        cluster: bool | None = None,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        connect_timeout: float = connection.DEFAULT_CONNECT_TIMEOUT,
        keepalive_seconds: float = connection.DEFAULT_KEEPALIVE_SECONDS,
        **config: Any,
    ) -> None:
        super().__init__(layer_config(**config))
        self.plan = connection.connection_plan(hosts, cluster)
        self.sockets = connection.SocketSettings(connect_timeout, keepalive_seconds)
        self.layout = KeyLayout(self.config.prefix, self.config.shards)
        # Where sends go: the application's current shard epoch (None until read once).
        self._shard_layout: KeyLayout | None = None
        self.retry_seconds = retry_seconds
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._last_loop: asyncio.AbstractEventLoop | None = None
        self._last_state: _LoopState | None = None

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if loop is self._last_loop and self._last_state is not None:
            return self._last_state  # the hot path: one loop, asked again and again
        state = self._states.get(loop)
        if state is None:
            clients = connection.open_clients(self.plan, self.sockets)
            state = self._states[loop] = _LoopState(clients, Batcher(clients, self.retry_seconds))
            _close_with_loop(loop, state)
        self._last_loop, self._last_state = loop, state
        return state

    def _batcher_now(self) -> Batcher:
        return self._state().batcher

    # Sending ---------------------------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        naming.require_valid_channel_name(channel)
        payload = codec.encode(message, self.config.max_message_size)
        if not await self._send_payload(channel, payload, ordering_key(message)):
            self.channel_full_count += 1
            if naming.is_process_specific(channel):
                raise ChannelFull(
                    f"the process reading {channel!r} has {self.config.inbox_capacity} messages "
                    "it has not read yet (inbox_capacity): it is stuck or gone"
                )
            raise ChannelFull(
                f"channel {channel!r} is full: it holds its capacity of "
                f"{self.get_capacity(channel)} messages (set 'capacity' or 'channel_capacity')"
            )

    async def _send_payload(self, channel: str, payload: bytes, key: str | None) -> bool:
        if naming.is_process_specific(channel):
            head, local = naming.split_process_specific(channel)
            return await self._push_to_inbox(head, local, payload)
        batcher = self._state().batcher
        layout = self._shard_layout or await self._read_shard_layout(batcher)
        while True:
            shard = layout.shard_for(channel, key)
            sent = await batcher.script(
                layout.shard_tags[shard],
                scripts.SEND_TO_STREAMS,
                [layout.channels_seen(shard)],  # the script finds the seal beside it
                [int(self.config.expiry * 1000)],
                keys=[layout.stream(shard, channel)],
                args=[self.get_capacity(channel), channel, payload],
            )
            if isinstance(sent, int):
                return bool(sent)
            layout = self._follow_seal(layout, sent)  # the shard count changed: send again

    async def _read_shard_layout(self, batcher: Batcher) -> KeyLayout:
        """The application's current shard layout, read once (later changes arrive as seals)."""
        state = await sharding.read_state(self.layout, batcher)
        if self._shard_layout is None or state.current.number > self._shard_layout.epoch:
            self._shard_layout = state.current.layout(self.config.prefix)
        return self._shard_layout

    def _follow_seal(self, layout: KeyLayout, seal: Any) -> KeyLayout:
        epoch = sharding.parse_seal(seal)
        current = self._shard_layout
        if current is None or epoch.number > current.epoch:
            logger.info("work shards: now %d (epoch %d)", epoch.count, epoch.number)
            current = self._shard_layout = epoch.layout(self.config.prefix)
        return current if current.epoch > layout.epoch else epoch.layout(self.config.prefix)

    # Receiving -------------------------------------------------------------------------------

    async def receive(self, channel: str) -> dict[str, Any]:
        naming.require_valid_channel_name(channel)
        if naming.is_process_specific(channel):
            head, local = naming.split_process_specific(channel)
            return await self._inbox(head).receive(local, channel)
        while True:
            received = await self.receive_many([channel], timeout=RECEIVE_WAIT_SECONDS)
            if received is not None:
                return received[1]

    def deliver_directly(self, channel: str, handler: DirectHandler | None) -> bool:
        """Process-specific channels: the inbox offers their messages to ``handler`` while
        their receiver waits idle (``Inbox.deliver_directly``)."""
        if not naming.is_process_specific(channel):
            return False
        head, local = naming.split_process_specific(channel)
        self._inbox(head).deliver_directly(local, handler)
        return True

    def _inbox(self, head: str) -> Inbox:
        state = self._state()
        if not head.endswith(f"{state.process}!"):
            raise InvalidChannelName(
                f"process-specific channels ending in {head!r} belong to another process (or "
                "event loop); receive only channels made by new_channel() in this one"
            )
        if state.inbox is None:
            key = self.layout.inbox(state.process)
            state.inbox = Inbox(
                state.clients.line(KeyLayout.tag_of(key)),
                key,
                self.config.expiry,
                self.get_capacity,
                self._count_overflow,
                self._count_malformed,
            )
        return state.inbox

    def _count_overflow(self, local: str) -> None:
        self.channel_full_count += 1
        logger.warning(
            "dropped the oldest message of a full process-specific channel (...%s)", local[-4:]
        )

    def _count_malformed(self, what: str) -> None:
        self.malformed_count += 1
        logger.warning("skipped %s: malformed, not written by this layer", what)

    async def receive_many(
        self, channels: Sequence[str], timeout: float | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        for channel in channels:
            naming.require_valid_channel_name(channel)
            if naming.is_process_specific(channel):
                raise InvalidChannelName(
                    f"receive_many takes normal channels; read {channel!r} with receive()"
                )
        state = self._state()
        names = tuple(sorted(set(channels)))
        receiver = state.plain_receivers.get(names)
        if receiver is None:
            receiver = state.plain_receivers[names] = PlainReceiver(
                layout=self.layout,
                clients=state.clients,
                batcher=state.batcher,
                channels=names,
                expiry=self.config.expiry,
                on_malformed=self._count_malformed,
            )
        delivery = await receiver.get(timeout)
        return None if delivery is None else (delivery.channel, delivery.message)

    def work_receiver(self, channels: Sequence[str], group: str = "workers") -> WorkReceiver:
        for channel in channels:
            naming.require_valid_channel_name(channel)
        naming.require_valid_group_name(group)
        state = self._state()
        return RedisWorkReceiver(
            layout=self.layout,
            clients=state.clients,
            batcher=state.batcher,
            channels=tuple(channels),
            group=group,
            lease_seconds=self.config.lease_seconds,
            expiry=self.config.expiry,
        )

    async def new_channel(self, prefix: str = "specific.") -> str:
        return self._new_channel_name(prefix, self._state().process)

    # Groups ----------------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Join (or renew) a membership; lapsed members are swept out here, not on each send."""
        naming.require_valid_group_name(group)
        naming.require_valid_channel_name(channel)
        key = self.layout.group(group)
        now = time.time()
        await asyncio.gather(
            self._state().batcher.script(
                KeyLayout.tag_of(key),
                scripts.GROUP_ADD,
                [key, self.layout.send_plan(group)],
                [self.group_expiry],
                args=[now, channel, f"({now - self.group_expiry}"],
            ),
            self._index_membership(group, channel, joined=True),  # for resumed sessions
        )

    async def group_discard(self, group: str, channel: str) -> None:
        naming.require_valid_group_name(group)
        naming.require_valid_channel_name(channel)
        key = self.layout.group(group)
        batcher = self._state().batcher
        tag = KeyLayout.tag_of(key)
        await asyncio.gather(
            batcher.command(tag, "ZREM", key, channel),
            batcher.command(tag, "DEL", self.layout.send_plan(group)),
            self._index_membership(group, channel, joined=False),
        )

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """One inbox write per process holding members, one stream write per normal channel."""
        naming.require_valid_group_name(group)
        message = await self._stamp(group, message)  # position in its history, if it keeps one
        payload = codec.encode(message, self.config.max_message_size)
        key = self.layout.group(group)
        lowest_live = f"({time.time() - self.group_expiry}"
        if self.plan.cluster or len(self.plan.hosts) > 1:
            full, normal = await self._group_send_in_two_steps(key, lowest_live, payload)
        else:
            full, normal = await self._state().batcher.script(
                KeyLayout.tag_of(key),
                scripts.GROUP_SEND_TO_INBOXES,
                [key, self.layout.send_plan(group)],
                [
                    lowest_live,
                    *self.layout.inbox_affixes,
                    self.config.inbox_capacity,
                    int(self.config.expiry * 1000),
                    self.group_expiry * 1000,
                ],
                args=[entry_tail(payload)],
            )
        sent = await asyncio.gather(
            *(self._send_payload(channel.decode(), payload, None) for channel in normal)
        )
        self.channel_full_count += full + sent.count(False)

    async def _group_send_in_two_steps(
        self, key: str, lowest_live: str, payload: bytes
    ) -> tuple[int, list[bytes]]:
        """Read the members grouped by process, then push to the inboxes: on a cluster or sharded
        hosts the inboxes live elsewhere than the group.  Returns (full inboxes, normal members)."""
        batcher = self._state().batcher
        grouped, normal = await batcher.script(
            KeyLayout.tag_of(key), scripts.GROUP_BY_PROCESS, [key], [lowest_live], args=[1]
        )
        pushes = [
            self._inbox_push(head.decode(), locals_.decode(), payload)
            for head, locals_ in zip(grouped[::2], grouped[1::2], strict=True)
        ]
        fits = await batcher.scripts(pushes) if pushes else []
        sent = [fit or await self._kept(push, fit) for push, fit in zip(pushes, fits, strict=True)]
        return sent.count(False), normal

    async def _push_to_inbox(self, head: str, locals_: str, payload: bytes) -> bool:
        """One inbox entry for ``locals_`` of the process ``head``; False if its inbox is full.

        The inbox holds what the process has not drained yet, so its limit (``inbox_capacity``)
        is the process's, not a channel's: a process that stopped reading fills it up."""
        push = self._inbox_push(head, locals_, payload)
        return await self._kept(push, await self._state().batcher.script(*push))

    def _inbox_push(self, head: str, locals_: str, payload: bytes) -> BatchCall:
        """The batch call that pushes one entry for ``locals_`` (comma-separated local names)."""
        inbox = self.layout.inbox(naming.process_of(head))
        return (
            KeyLayout.tag_of(inbox),
            scripts.PUSH_TO_INBOX,
            [inbox],
            [int(self.config.expiry * 1000), self.config.inbox_capacity],
            (),
            [pack_entry(locals_, payload)],
        )

    async def _kept(self, push: BatchCall, fits: bool) -> bool:
        """Whether a pushed entry stays sent: one that went past the inbox's capacity is taken
        back (``LREM``), unless the reader has taken it already."""
        if fits:
            return True
        tag, _, (inbox,), _, _, (entry,) = push
        removed = await self._state().batcher.command(tag, "LREM", inbox, -1, entry)
        return not removed

    # Housekeeping ----------------------------------------------------------------------------

    async def queue_stats(self) -> QueueStats:
        state = self._state()
        return await read_queue_stats(self.layout, state.batcher)

    async def work_shards(self) -> sharding.ShardState:
        """The application's shard count now, and the previous one while a change drains (a
        previous one found drained is forgotten here)."""
        return await sharding.retire_if_drained(self.layout, self._state().batcher)

    async def set_work_shards(self, count: int) -> sharding.ShardState:
        """Change the application's work shard count online (see ``sharding``): no taken
        message is lost and each connection's order holds. Raises ``ShardChangePending`` while
        the previous change drains; one process (the operator) changes it at a time."""
        state = await sharding.change(self.layout, self._state().batcher, count)
        self._shard_layout = state.current.layout(self.config.prefix)
        return state

    async def report_load(
        self,
        member: str,
        connections: int,
        ttl_seconds: float,
        cpu_percent: float | None = None,
    ) -> None:
        report = LoadReport(connections, cpu_percent)
        await load.report(self.layout, self._state().batcher, member, report, ttl_seconds)

    async def load_reports(self) -> dict[str, LoadReport]:
        return await load.read(self.layout, self._state().batcher)

    async def check(self) -> None:
        """Return once every server holding this layer's keys has answered: one ``EXISTS`` per
        shard tag and one for the prefix, through the pipelines (and, on a cluster, the slot
        map) that the layer's traffic uses; a failure raises after ``retry_seconds``. Bound the
        wait yourself (readiness gives it 5 s)."""
        layout = self.layout
        calls = [(tag, ("EXISTS", f"{{{tag}}}:channels")) for tag in layout.shard_tags]
        calls.append((layout.prefix, ("EXISTS", layout.workers("workers"))))
        await self._state().batcher.check(calls)

    async def flush(self) -> None:
        """Delete every key of this layer's prefix (on every master) and reset local state."""
        state = self._state()
        await state.close()
        self._forget_loop_state()
        self._shard_layout = None  # the shard state goes too: epoch 0 again
        clients = connection.open_clients(self.plan, self.sockets)
        try:
            await _delete_prefix(clients, self.layout)
        finally:
            await clients.close()

    async def close(self) -> None:
        state = self._states.get(asyncio.get_running_loop())
        self._forget_loop_state()
        if state is not None:
            await state.close()

    def _forget_loop_state(self) -> None:
        self._states.pop(asyncio.get_running_loop(), None)
        self._last_loop = self._last_state = None


async def _delete_prefix(clients: connection.Clients, layout: KeyLayout) -> None:
    """Delete the keys of ``layout``'s prefix, not those of prefixes that start with it."""
    pattern = layout.scan_pattern
    for client in clients.clients:
        if isinstance(client, connection.RedisCluster):
            await client.initialize()
            nodes = client.get_primaries()
            for node in nodes:
                async for key in client.scan_iter(match=pattern, count=1000, target_nodes=node):
                    if layout.owns(key.decode(errors="replace")):
                        await client.delete(key)
        else:
            async for key in client.scan_iter(match=pattern, count=1000):
                if layout.owns(key.decode(errors="replace")):
                    await client.delete(key)


def _close_with_loop(loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
    """Close a loop's connections when that loop closes (async_to_sync makes short-lived loops)."""
    original_close = loop.close

    def close() -> None:
        if not loop.is_running() and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.run_until_complete(state.close())
        original_close()

    loop.close = close  # type: ignore[method-assign]
