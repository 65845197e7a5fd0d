"""Queue statistics returned by ``queue_stats()`` and the interfaces' load reports
(``load_reports()``): what the autoscalers and the metrics read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChannelStats:
    """Messages waiting on one channel and the age of the oldest of them."""

    depth: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class QueueStats:
    """Per-channel statistics and their totals."""

    channels: dict[str, ChannelStats] = field(default_factory=dict)

    @property
    def total_depth(self) -> int:
        return sum(stats.depth for stats in self.channels.values())

    @property
    def oldest_age_seconds(self) -> float:
        return max((stats.oldest_age_seconds for stats in self.channels.values()), default=0.0)


@dataclass(frozen=True)
class LoadReport:
    """What one interface process last reported (``report_load``): its open WebSockets and the
    CPU it used since its previous report, in percent of one core (None: not reported)."""

    connections: int
    cpu_percent: float | None = None


def merge(parts: list[dict[str, ChannelStats]]) -> QueueStats:
    """Add up per-shard statistics of the same channels."""
    merged: dict[str, ChannelStats] = {}
    for part in parts:
        for channel, stats in part.items():
            seen = merged.get(channel)
            if seen is None:
                merged[channel] = stats
            else:
                merged[channel] = ChannelStats(
                    depth=seen.depth + stats.depth,
                    oldest_age_seconds=max(seen.oldest_age_seconds, stats.oldest_age_seconds),
                )
    return QueueStats(channels=merged)
