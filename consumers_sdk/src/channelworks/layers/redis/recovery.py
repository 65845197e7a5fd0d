"""The Redis layer's side of recovery: history reads, parked sessions, moved memberships."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, cast

from channelworks.layers import base, history, naming
from channelworks.layers.recovery import RecoveryAPI
from channelworks.layers.redis import history as redis_history
from channelworks.layers.redis import resume
from channelworks.layers.redis.batcher import Batcher
from channelworks.layers.redis.keys import KeyLayout


class RedisRecovery(RecoveryAPI):
    """Mixed into ``RedisChannelLayer`` (which gives ``layout`` and ``_batcher_now``)."""

    supports_recovery: ClassVar[bool] = True
    layout: KeyLayout

    def _batcher_now(self) -> Batcher:
        raise NotImplementedError

    async def _stamp(self, group: str, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` kept in ``group``'s history and stamped with its position, when the
        group keeps one; else ``message`` as it is."""
        rule = self.history_policy.rule_for(group)
        if rule is None:
            return message
        layer = cast(base.ChannelworksLayer, self)
        return await redis_history.append(
            self.layout,
            self._batcher_now(),
            group,
            history.without_position(message),
            rule.size,
            rule.ttl,
            layer.config.max_message_size,
        )

    async def _index_membership(self, group: str, channel: str, joined: bool) -> None:
        layer = cast(base.ChannelworksLayer, self)
        if joined:
            await resume.remember(
                self.layout, self._batcher_now(), group, channel, layer.group_expiry
            )
        else:
            await resume.forget(self.layout, self._batcher_now(), group, channel)

    async def group_history(
        self, group: str, channel: str, epoch: str, after: int
    ) -> history.HistoryRead:
        naming.require_valid_group_name(group)
        return await redis_history.read(
            self.layout, self._batcher_now(), group, channel, epoch, after
        )

    async def park_session(self, token: str, record: dict[str, Any], ttl: float) -> None:
        await resume.park(self.layout, self._batcher_now(), token, record, ttl)

    async def claim_session(self, token: str) -> dict[str, Any] | None:
        return await resume.claim(self.layout, self._batcher_now(), token)

    async def move_memberships(self, old: str, new: str) -> list[str]:
        layer = cast(base.ChannelworksLayer, self)
        groups = await resume.groups_of(self.layout, self._batcher_now(), old)
        await asyncio.gather(*(layer.group_add(group, new) for group in groups))
        await asyncio.gather(*(layer.group_discard(group, old) for group in groups))
        await resume.drop_memberships(self.layout, self._batcher_now(), old)
        return groups
