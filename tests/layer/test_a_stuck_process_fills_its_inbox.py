"""A process that stops reading fills its inbox: senders get ChannelFull, and a send that raised
was not delivered."""

from __future__ import annotations

import asyncio

import pytest

from channelworks.exceptions import ChannelFull

from .conftest import LayerFactory


@pytest.mark.parametrize("backend", ["redis", "cluster"])  # inbox_capacity is Redis's
async def test_sends_past_inbox_capacity_raise_and_only_the_others_arrive(
    make_layer: LayerFactory,
) -> None:
    stuck, sender = make_layer(), make_layer(inbox_capacity=3)
    channel = await stuck.new_channel()  # its process reads nothing yet
    outcomes = await asyncio.gather(
        *(sender.send(channel, {"n": n}) for n in range(10)), return_exceptions=True
    )
    sent = [n for n, outcome in enumerate(outcomes) if outcome is None]
    assert len(sent) == 3
    assert all(isinstance(outcome, ChannelFull) for outcome in outcomes if outcome is not None)
    with pytest.raises(ChannelFull, match="inbox_capacity"):
        await sender.send(channel, {"n": 10})
    async with asyncio.timeout(5):
        received = [(await stuck.receive(channel))["n"] for _ in sent]
    assert received == sent
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stuck.receive(channel), 0.3)
    await sender.send(channel, {"n": 11})  # drained: room again
    assert await asyncio.wait_for(stuck.receive(channel), 5) == {"n": 11}
