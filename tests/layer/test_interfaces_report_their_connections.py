"""report_load / load_reports: each interface process's open WebSockets and CPU under its name,
kept while the report lives (what the operator's interface autoscaler sums), on every backend."""

from __future__ import annotations

import asyncio

from channelworks.layers.redis import load
from channelworks.layers.stats import LoadReport
from tests.layer.conftest import LayerFactory


async def test_reports_count_until_they_expire(make_layer: LayerFactory, backend: str) -> None:
    interface_a, interface_b, operator = make_layer(), make_layer(), make_layer()
    await interface_a.report_load("chat-interface-a", 12, 30, cpu_percent=64.25)
    await interface_b.report_load("chat-interface-b", 3, 30)
    await interface_b.report_load("chat-interface-gone", 40, 0.3, cpu_percent=5.0)
    if backend not in ("redis", "cluster"):
        assert await operator.load_reports() == {}  # one process: nobody else to count
        return
    assert await operator.load_reports() == {
        "chat-interface-a": LoadReport(12, 64.2),  # one decimal travels
        "chat-interface-b": LoadReport(3, None),  # no CPU measured: none claimed
        "chat-interface-gone": LoadReport(40, 5.0),
    }
    await interface_a.report_load("chat-interface-a", 7, 30, cpu_percent=12.0)  # replaces it
    await interface_b.report_load("chat-interface-b", 3, 30)
    await asyncio.sleep(0.5)
    assert await operator.load_reports() == {
        "chat-interface-a": LoadReport(7, 12.0),
        "chat-interface-b": LoadReport(3, None),
    }


def test_old_and_garbled_reports_are_read_or_dropped() -> None:
    """An interface of the previous release writes '<count> <expiry>' (no CPU): still counted;
    anything else that cannot be read, or has expired, is dropped."""
    now = 1_000_000
    reports, stale = load.fresh(
        {
            "old-image": f"5 {now + 1}",
            "new-image": f"6 {now + 1} 33.5",
            "expired": f"9 {now - 1} 10.0",
            "negative-cpu": f"1 {now + 1} -3",
            "not-a-number": f"1 {now + 1} lots",
            "too-many-parts": f"1 {now + 1} 2 3",
        },
        now,
    )
    assert reports == {"old-image": LoadReport(5), "new-image": LoadReport(6, 33.5)}
    assert sorted(stale) == ["expired", "negative-cpu", "not-a-number", "too-many-parts"]
