"""A group that keeps a history (``CHANNELWORKS["GROUP_HISTORY"]``) stamps every message with its
stream epoch and offset, keeps the last N for a TTL, and gives a member exactly what it missed
after an offset, or says the history is gone; a socket's memberships can be moved to its new
channel. Real Redis (one server and a cluster)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from channelworks.layers import RedisChannelLayer, history

pytestmark = pytest.mark.parametrize("where", ["redis_url", "cluster_url"])


@pytest.fixture
async def layer(request: pytest.FixtureRequest, where: str) -> AsyncIterator[RedisChannelLayer]:
    made = RedisChannelLayer(
        hosts=[request.getfixturevalue(where)], prefix=f"hist{secrets.token_hex(3)}"
    )
    made.history_policy = history.policy_from_settings(
        {"feed": 3, "news-*": {"size": 100, "ttl": 1}}, ttl=60
    )
    yield made
    await made.close()


async def test_members_get_stamped_messages_and_a_reader_gets_the_missed_ones(
    layer: RedisChannelLayer,
) -> None:
    channel = await layer.new_channel()
    await layer.group_add("feed", channel)
    for n in range(1, 5):
        await layer.group_send("feed", {"text": f"m{n}"})
    received = [await layer.receive(channel) for _ in range(4)]
    positions = [history.position(message) for message in received]
    epoch = positions[0][1]  # type: ignore[index]
    assert positions == [("feed", epoch, n) for n in range(1, 5)]
    assert [m["text"] for m in received] == ["m1", "m2", "m3", "m4"]

    # Kept: the last 3 (2, 3, 4). After 1: exactly 2, 3, 4, in order.
    read = await layer.group_history("feed", channel, epoch, 1)
    assert read.status == "ok" and read.latest == 4
    assert [(offset, m["text"]) for offset, m in read.messages] == [(2, "m2"), (3, "m3"), (4, "m4")]
    assert history.position(read.messages[0][1]) == ("feed", epoch, 2)
    assert (await layer.group_history("feed", channel, epoch, 4)).messages == []
    # Offset 1 was trimmed: whoever is at 0 missed more than is kept.
    assert (await layer.group_history("feed", channel, epoch, 0)).status == "gone"
    assert (await layer.group_history("feed", channel, "another-epoch", 3)).status == "gone"
    # Someone who is not a member reads nothing.
    stranger = await layer.new_channel()
    assert (await layer.group_history("feed", stranger, epoch, 1)).status == "not_member"


async def test_an_expired_history_starts_a_new_epoch(layer: RedisChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.group_add("news-1", channel)
    await layer.group_send("news-1", {"text": "before"})
    first = history.position(await layer.receive(channel))
    assert first is not None
    await asyncio.sleep(1.3)  # the TTL (1 s) passes with no send
    assert (await layer.group_history("news-1", channel, first[1], 1)).status == "gone"
    await layer.group_send("news-1", {"text": "after"})
    second = history.position(await layer.receive(channel))
    assert second is not None and second[1] != first[1] and second[2] == 1
    assert (await layer.group_history("news-1", channel, first[1], 1)).status == "gone"


async def test_groups_without_history_are_untouched(layer: RedisChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.group_add("plain", channel)
    await layer.group_send("plain", {"text": "x"})
    assert await layer.receive(channel) == {"text": "x"}


async def test_memberships_move_to_a_resumed_sockets_new_channel(layer: RedisChannelLayer) -> None:
    old, new = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("feed", old)
    await layer.group_add("plain", old)
    await layer.group_add("left", old)
    await layer.group_discard("left", old)
    await layer.park_session("tok", {"channel": old}, ttl=5)
    assert await layer.claim_session("tok") == {"channel": old}
    assert await layer.claim_session("tok") is None  # once only
    assert await layer.move_memberships(old, new) == ["feed", "plain"]
    await layer.group_send("plain", {"text": "for the new channel"})
    assert await layer.receive(new) == {"text": "for the new channel"}
    # The old channel is in no group any more.
    assert await layer.move_memberships(old, await layer.new_channel()) == []
