"""report_load / load_reports: each interface process's open WebSockets under its name, kept
while the report lives (what the operator's interface autoscaler sums), on every backend."""

from __future__ import annotations

import asyncio

from tests.layer.conftest import LayerFactory


async def test_reports_count_until_they_expire(make_layer: LayerFactory, backend: str) -> None:
    interface_a, interface_b, operator = make_layer(), make_layer(), make_layer()
    await interface_a.report_load("chat-interface-a", 12, 30)
    await interface_b.report_load("chat-interface-b", 3, 30)
    await interface_b.report_load("chat-interface-gone", 40, 0.3)
    if backend not in ("redis", "cluster"):
        assert await operator.load_reports() == {}  # one process: nobody else to count
        return
    assert await operator.load_reports() == {
        "chat-interface-a": 12,
        "chat-interface-b": 3,
        "chat-interface-gone": 40,
    }
    await interface_a.report_load("chat-interface-a", 7, 30)  # a new report replaces the last
    await interface_b.report_load("chat-interface-b", 3, 30)
    await asyncio.sleep(0.5)
    assert await operator.load_reports() == {"chat-interface-a": 7, "chat-interface-b": 3}
