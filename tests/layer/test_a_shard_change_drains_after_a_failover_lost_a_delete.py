"""A shard count change completes even when a master failover lost an acknowledgement's delete.

Redis replicates asynchronously: an ``XDEL`` the old master took just before it failed can be
missing on the promoted replica, so a handled entry is back in its stream, behind the position
its reader has passed. On a shard of the epoch a change replaced (sealed: it takes no new
entries) that entry kept the shard from ever being empty, so the change never drained and the
new shards waiting for it never served (seen in ``bench/scale.py --reshard 64``). The lost
delete is the one fault injected here (no real part loses a write on demand); Redis, the
receiver and the change are real.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from channelworks.layers import RedisChannelLayer
from channelworks.layers.redis.work import RedisWorkReceiver
from tests.support.eventually import eventually_async

CHANNEL = "test.work"


def test_a_handled_entry_back_behind_the_reader_is_handed_out_again_and_the_change_drains(
    redis_url: str,
) -> None:
    async def scenario() -> None:
        prefix = f"lostdel{secrets.token_hex(3)}"
        layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
        changer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
        receiver = layer.work_receiver([CHANNEL])
        assert isinstance(receiver, RedisWorkReceiver)
        try:
            await layer.send(CHANNEL, {"reply_channel": "specific.a!1", "order": 0})
            first = await receiver.get(timeout=10)
            assert first is not None and first.message["order"] == 0

            # The change seals the 16 shards while the message is still unacknowledged.
            await changer.set_work_shards(64)

            # Its acknowledgement's delete is lost, as in a failover.
            deletes = receiver._deletes

            def lose_the_first(
                tag: str, key: bytes, entry_id: bytes, late: bool = False
            ) -> list[asyncio.Future[Any]]:
                receiver._deletes = deletes  # type: ignore[method-assign]
                return []

            receiver._deletes = lose_the_first  # type: ignore[method-assign]
            await first.ack()
            assert (await changer.queue_stats()).total_depth == 1  # handled, yet still there

            # The receiver finds it behind its position and hands it out again (at least once).
            again = await receiver.get(timeout=30)
            assert again is not None and again.message == first.message
            await again.ack()

            async def drained() -> Any:
                state = await changer.work_shards()
                assert state.draining is None and state.current.count == 64, state
                return state

            await eventually_async(drained, timeout=30, interval=0.2)
            assert (await changer.queue_stats()).total_depth == 0
        finally:
            await receiver.stop(timeout=5)
            await layer.close()
            await changer.close()

    asyncio.run(scenario())
