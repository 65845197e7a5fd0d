"""The per-connection dispatcher: in order, one at a time, and never stuck on a lost message."""

from __future__ import annotations

import asyncio

from channelworks.layers.ordering import Delivery, KeyedDispatcher


def _event(order: int, key: str = "specific.p!a") -> Delivery:
    return Delivery("websocket.receive", {"reply_channel": key, "order": order}, key)


async def test_events_arriving_out_of_order_are_handed_out_in_order() -> None:
    dispatcher = KeyedDispatcher()
    for order in (0, 2, 1):
        dispatcher.offer(_event(order))
    handed = []
    while (delivery := dispatcher.next_ready()) is not None:
        handed.append(delivery.message["order"])
        dispatcher.done(delivery)
    assert handed == [0, 1, 2]


async def test_a_missing_predecessor_holds_its_successor_only_briefly() -> None:
    dispatcher = KeyedDispatcher(hold_seconds=0.2)
    first = _event(0)
    dispatcher.offer(first)
    assert dispatcher.next_ready() is first
    dispatcher.done(first)
    dispatcher.offer(_event(2))  # order 1 was lost
    assert dispatcher.next_ready() is None
    await asyncio.sleep(0.25)
    dispatcher.release_overdue()
    late = dispatcher.next_ready()
    assert late is not None and late.message["order"] == 2


async def test_other_connections_are_not_held_back() -> None:
    dispatcher = KeyedDispatcher()
    busy = _event(0, "specific.p!busy")
    dispatcher.offer(busy)
    dispatcher.offer(_event(1, "specific.p!busy"))
    dispatcher.offer(_event(0, "specific.p!free"))
    assert dispatcher.next_ready() is busy
    other = dispatcher.next_ready()
    assert other is not None and other.key == "specific.p!free"
    assert dispatcher.next_ready() is None  # busy's next waits for its ack
    assert len(dispatcher) == 1
