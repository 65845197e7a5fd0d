"""What every Channelworks layer backend shares: Channels' API surface plus our extensions."""

from __future__ import annotations

import abc
import secrets
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from channels.layers import BaseChannelLayer

from channelworks.layers import naming
from channelworks.layers.config import LayerConfig
from channelworks.layers.ordering import Delivery
from channelworks.layers.recovery import RecoveryAPI
from channelworks.layers.stats import LoadReport, QueueStats


class WorkReceiver(abc.ABC):
    """The reliable, ordered way for workers to take messages (see ``work_receiver``)."""

    @abc.abstractmethod
    async def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery, or None when ``timeout`` seconds pass (or after :meth:`stop`)."""

    @abc.abstractmethod
    async def stop(self, timeout: float | None = None) -> None:
        """Take nothing new; wait up to ``timeout`` seconds (a backend default when None) for
        deliveries already handed out to be acked, then give their source back."""

    @property
    def healthy(self) -> bool:
        """False while the backend cannot be reached (for a readiness probe)."""
        return True

    async def __aenter__(self) -> WorkReceiver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class ChannelworksLayer(BaseChannelLayer, RecoveryAPI, abc.ABC):  # type: ignore[misc]
    """Channels 4's channel-layer API with ``receive_many``, ``work_receiver``, ``queue_stats``."""

    extensions: ClassVar[list[str]] = ["groups", "flush"]

    def __init__(self, config: LayerConfig) -> None:
        super().__init__(expiry=config.expiry, capacity=config.capacity)
        self.config = config
        self.group_expiry = config.group_expiry
        self.channel_capacity = list(config.channel_capacity)
        # Messages refused (send) or skipped (group send, full local queue) because a channel
        # was full; exported as channelworks_layer_channel_full_total.
        self.channel_full_count = 0
        # Messages dropped because they could not be read (an entry the layer did not write):
        # exported as channelworks_layer_malformed_messages_total.
        self.malformed_count = 0

    def get_capacity(self, channel: str) -> int:
        return self.config.capacity_for(channel)

    def require_valid_channel_name(self, name: Any, receive: bool = False) -> bool:
        naming.require_valid_channel_name(name)
        return True

    def require_valid_group_name(self, name: Any) -> bool:
        naming.require_valid_group_name(name)
        return True

    @staticmethod
    def _new_channel_name(prefix: str, process: str) -> str:
        return f"{prefix}{process}!{secrets.token_hex(6)}"

    @abc.abstractmethod
    async def send(self, channel: str, message: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def receive(self, channel: str) -> dict[str, Any]: ...

    def deliver_directly(self, channel: str, handler: Callable[[bytes], bool] | None) -> bool:
        """Offer the messages of the process-specific ``channel`` to ``handler`` (the message
        encoded with ``channelworks.layers.codec``; True if it took it) while the channel's one
        receiver waits idle, instead of waking it (None: stop). Called synchronously by the
        layer's reader: it must not block or raise. False: this backend hands every message to
        ``receive()``."""
        return False

    @abc.abstractmethod
    async def receive_many(
        self, channels: Sequence[str], timeout: float | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """Wait on all ``channels`` at once; the first message of any of them, or None."""

    @abc.abstractmethod
    async def new_channel(self, prefix: str = "specific.") -> str: ...

    @abc.abstractmethod
    async def group_add(self, group: str, channel: str) -> None: ...

    @abc.abstractmethod
    async def group_discard(self, group: str, channel: str) -> None: ...

    @abc.abstractmethod
    async def group_send(self, group: str, message: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def flush(self) -> None: ...

    @abc.abstractmethod
    def work_receiver(self, channels: Sequence[str], group: str = "workers") -> WorkReceiver:
        """Reliable, per-connection-ordered consumption of ``channels`` (see the docs)."""

    @abc.abstractmethod
    async def queue_stats(self) -> QueueStats: ...

    async def report_load(
        self,
        member: str,
        connections: int,
        ttl_seconds: float,
        cpu_percent: float | None = None,
    ) -> None:
        """Publish that ``member`` (an interface process) holds ``connections`` sockets now and
        used ``cpu_percent`` of one core lately; the report counts for ``ttl_seconds``. Backends
        in one process have no one to tell."""

    async def load_reports(self) -> dict[str, LoadReport]:
        """The last report of every member whose report has not expired (and drop the expired
        ones); nothing for backends in one process."""
        return {}

    async def check(self) -> None:
        """Return once the layer's servers answer (raise if they cannot be reached); readiness
        probes call it with a time limit. Backends with nothing to reach return at once."""

    async def close(self) -> None:
        """Release connections and background tasks (the layer can be used again after)."""
