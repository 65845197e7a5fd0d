"""What a layer offers for recovery after a reconnect: group history and resumable sessions.

Backends that keep them (Redis) override these methods; the others answer that they do not
(``supports_recovery`` False), and the interface then offers neither (see docs/delivery.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

from channelworks.layers import history


class RecoveryAPI:
    """Mixed into every layer backend: history reads, and parking/claiming a socket's session."""

    supports_recovery: ClassVar[bool] = False
    # Which groups keep a history; set from CHANNELWORKS["GROUP_HISTORY"] when the layer is
    # installed (channelworks.asgi), so every Django process of the app applies the same one.
    history_policy: history.HistoryPolicy = history.NO_HISTORY

    async def group_history(
        self, group: str, channel: str, epoch: str, after: int
    ) -> history.HistoryRead:
        """What ``channel`` (a member of ``group``) missed after offset ``after`` of ``epoch``."""
        return history.GONE

    async def park_session(self, token: str, record: dict[str, Any], ttl: float) -> None:
        """Keep ``record`` (a closed socket's session) for ``ttl`` seconds under ``token``."""
        raise NotImplementedError(f"{type(self).__name__} cannot keep sessions for resuming")

    async def claim_session(self, token: str) -> dict[str, Any] | None:
        """Take the record parked under ``token`` (once: a second claim gets None)."""
        return None

    async def move_memberships(self, old: str, new: str) -> list[str]:
        """Put ``new`` in every group ``old`` is in, take ``old`` out; return those groups."""
        raise NotImplementedError(f"{type(self).__name__} cannot move group memberships")
