"""The Channels 4 channel-layer API, on every backend."""

from __future__ import annotations

import asyncio
import time

import pytest

from channelworks.exceptions import (
    ChannelFull,
    InvalidChannelName,
    InvalidGroupName,
    MessageNotEncodable,
    MessageTooLarge,
)
from channelworks.layers import ChannelworksLayer

from .conftest import LayerFactory


async def test_send_then_receive_returns_the_same_message(layer: ChannelworksLayer) -> None:
    await layer.send("orders", {"type": "order.created", "id": 7, "data": b"\x00\x01"})
    assert await layer.receive("orders") == {
        "type": "order.created",
        "id": 7,
        "data": b"\x00\x01",
    }


async def test_messages_of_one_channel_arrive_in_send_order(layer: ChannelworksLayer) -> None:
    for number in range(20):
        await layer.send("numbers", {"n": number})
    received = [(await layer.receive("numbers"))["n"] for _ in range(20)]
    assert received == list(range(20))


async def test_process_specific_channel_reaches_its_receiver(layer: ChannelworksLayer) -> None:
    first = await layer.new_channel()
    second = await layer.new_channel()
    assert first != second and "!" in first and first.startswith("specific.")
    await layer.send(second, {"to": "second"})
    await layer.send(first, {"to": "first"})
    assert await layer.receive(first) == {"to": "first"}
    assert await layer.receive(second) == {"to": "second"}


async def test_group_send_reaches_members_and_not_discarded_ones(
    make_layer: LayerFactory,
) -> None:
    sender, other_process = make_layer(), make_layer()
    mine, theirs, gone = (
        await sender.new_channel(),
        await other_process.new_channel(),
        await sender.new_channel(),
    )
    for channel in (mine, theirs, gone):
        await sender.group_add("room", channel)
    await sender.group_discard("room", gone)
    await sender.group_send("room", {"text": "hello"})
    assert await asyncio.wait_for(sender.receive(mine), 5) == {"text": "hello"}
    assert await asyncio.wait_for(other_process.receive(theirs), 5) == {"text": "hello"}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sender.receive(gone), 0.3)


async def test_group_send_to_normal_channel_members(layer: ChannelworksLayer) -> None:
    await layer.group_add("listeners", "audit.log")
    await layer.group_send("listeners", {"event": "x"})
    assert await asyncio.wait_for(layer.receive("audit.log"), 5) == {"event": "x"}


async def test_a_full_channel_raises_channel_full_naming_the_capacity(
    make_layer: LayerFactory,
) -> None:
    layer = make_layer(capacity=3, channel_capacity={"big.*": 5})
    for _ in range(3):
        await layer.send("small", {})
    with pytest.raises(ChannelFull, match="capacity of 3"):
        await layer.send("small", {})
    for _ in range(5):
        await layer.send("big.one", {})
    with pytest.raises(ChannelFull, match="capacity of 5"):
        await layer.send("big.one", {})


async def test_a_channel_emptied_by_receive_takes_its_full_capacity_again(
    make_layer: LayerFactory,
) -> None:
    layer = make_layer(capacity=1)
    await layer.send("refilled", {"n": 0})
    for n in range(1, 8):
        async with asyncio.timeout(5):
            assert await layer.receive("refilled") == {"n": n - 1}
        # sent the moment the previous message was received: it no longer counts as held
        await layer.send("refilled", {"n": n})


async def test_each_member_of_a_broadcast_gets_a_message_of_its_own(
    make_layer: LayerFactory,
) -> None:
    layer = make_layer()
    first, second = await layer.new_channel(), await layer.new_channel()
    for channel in (first, second):
        await layer.group_add("pair", channel)
    await layer.group_send("pair", {"text": "hi", "tags": ["a"]})
    got_first = await asyncio.wait_for(layer.receive(first), 5)
    got_first["text"] = "changed by the first consumer"
    got_first["tags"].append("b")
    assert await asyncio.wait_for(layer.receive(second), 5) == {"text": "hi", "tags": ["a"]}


async def test_messages_older_than_expiry_are_not_delivered(make_layer: LayerFactory) -> None:
    layer = make_layer(expiry=1)
    await layer.send("slow", {"n": 1})
    await asyncio.sleep(1.3)
    await layer.send("slow", {"n": 2})
    assert await asyncio.wait_for(layer.receive("slow"), 5) == {"n": 2}


async def test_group_membership_expires_after_group_expiry(make_layer: LayerFactory) -> None:
    layer = make_layer(group_expiry=1)
    channel = await layer.new_channel()
    await layer.group_add("brief", channel)
    await asyncio.sleep(1.3)
    await layer.group_send("brief", {"late": True})
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.5)


async def test_flush_forgets_messages_and_groups(layer: ChannelworksLayer) -> None:
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.send("pending", {"n": 1})
    await layer.flush()
    await layer.group_send("room", {"after": "flush"})
    assert await layer.receive_many(["pending"], timeout=0.3) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [("has space", "invalid channel name"), ("x" * 120, "120 long"), (42, "must be a str")],
)
async def test_invalid_channel_names_are_rejected_with_the_rule(
    layer: ChannelworksLayer, name: object, problem: str
) -> None:
    with pytest.raises(InvalidChannelName, match=problem) as error:
        await layer.send(name, {})  # type: ignore[arg-type]
    assert "ASCII letters, digits, hyphens, underscores and periods" in str(error.value)
    assert isinstance(error.value, TypeError)  # what Channels raises


async def test_invalid_group_names_are_rejected(layer: ChannelworksLayer) -> None:
    with pytest.raises(InvalidGroupName, match="invalid group name 'a!b'"):
        await layer.group_add("a!b", "channel")


async def test_oversized_messages_name_size_and_limit(make_layer: LayerFactory) -> None:
    layer = make_layer(max_message_size=1000)
    with pytest.raises(MessageTooLarge, match=r"is \d+ bytes encoded; the limit .* is 1000"):
        await layer.send("big", {"blob": b"x" * 2000})


async def test_unencodable_values_are_named(layer: ChannelworksLayer) -> None:
    with pytest.raises(MessageNotEncodable, match="cannot be encoded with msgpack"):
        await layer.send("odd", {"when": object()})
    with pytest.raises(MessageNotEncodable, match="must be a dict"):
        await layer.send("odd", ["not", "a", "dict"])  # type: ignore[arg-type]


async def test_receive_many_returns_whichever_channel_has_a_message(
    layer: ChannelworksLayer,
) -> None:
    waiting = asyncio.create_task(layer.receive_many(["a", "b", "c"], timeout=5))
    await asyncio.sleep(0.2)
    await layer.send("c", {"from": "c"})
    assert await waiting == ("c", {"from": "c"})


async def test_receive_many_is_fair_between_busy_channels(layer: ChannelworksLayer) -> None:
    for number in range(30):
        await layer.send("busy", {"n": number})
    for number in range(3):
        await layer.send("quiet", {"n": number})
    first_ten = [await layer.receive_many(["busy", "quiet"], timeout=5)]
    await asyncio.sleep(0.3)  # both channels now have messages waiting in the receiver
    first_ten += [await layer.receive_many(["busy", "quiet"], timeout=5) for _ in range(9)]
    channels = [received[0] for received in first_ten if received is not None]
    assert channels.count("quiet") == 3, channels


async def test_receive_many_times_out_with_none(layer: ChannelworksLayer) -> None:
    started = time.monotonic()
    assert await layer.receive_many(["nobody"], timeout=0.5) is None
    assert 0.4 < time.monotonic() - started < 3


async def test_a_burst_of_replies_to_one_process_is_not_refused(layer: ChannelworksLayer) -> None:
    """Capacity is per channel: 500 sockets of one interface process each get their reply."""
    sockets = [await layer.new_channel() for _ in range(500)]
    await asyncio.gather(*(layer.send(socket, {"reply": n}) for n, socket in enumerate(sockets)))
    replies = [await asyncio.wait_for(layer.receive(socket), 5) for socket in sockets]
    assert [reply["reply"] for reply in replies] == list(range(500))


async def test_channels_made_with_any_prefix_are_received(layer: ChannelworksLayer) -> None:
    plain, custom = await layer.new_channel(), await layer.new_channel("websocket.reply.")
    assert custom.startswith("websocket.reply.")
    await layer.send(custom, {"to": "custom"})
    await layer.send(plain, {"to": "plain"})
    assert await asyncio.wait_for(layer.receive(custom), 5) == {"to": "custom"}
    assert await asyncio.wait_for(layer.receive(plain), 5) == {"to": "plain"}
