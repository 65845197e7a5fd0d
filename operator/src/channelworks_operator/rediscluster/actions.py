"""The steps ``planning`` decides and ``executor`` carries out, as plain values.

Each names the node it acts on by pod address (to connect to) and node id (to check it is still
the same node), and says in ``describe()`` what it does, for logs and Kubernetes events.
"""

from __future__ import annotations

from dataclasses import dataclass

from channelworks_operator.rediscluster import slots


@dataclass(frozen=True)
class Meet:
    """``CLUSTER MEET`` sent to ``via``: it introduces the node at ``host:port`` to the cluster."""

    via: str
    host: str
    port: int
    bus_port: int
    node_id: str

    def describe(self) -> str:
        return f"meet node {self.node_id[:8]} at {self.host}:{self.port}"


@dataclass(frozen=True)
class AddSlots:
    """``CLUSTER ADDSLOTSRANGE``: the node starts serving slots nobody serves."""

    address: str
    node_id: str
    slots: slots.Ranges

    def describe(self) -> str:
        return (
            f"assign {slots.count(self.slots)} slots ({slots.format_ranges(self.slots)}) "
            f"to {self.address}"
        )


@dataclass(frozen=True)
class Replicate:
    """``CLUSTER REPLICATE``: the node becomes a replica of ``master_id`` (an empty master's
    stray keys, which no slot of it serves, are flushed first)."""

    address: str
    node_id: str
    master_id: str
    master_address: str

    def describe(self) -> str:
        return f"make {self.address} a replica of {self.master_address}"


@dataclass(frozen=True)
class MoveSlots:
    """Move slots and their keys from ``source`` to ``target`` (SETSLOT IMPORTING/MIGRATING,
    MIGRATE in batches, SETSLOT NODE on both and on ``notify``)."""

    source: str
    source_id: str
    target: str
    target_id: str
    target_host: str
    target_port: int
    slots: slots.Ranges
    notify: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"move {slots.count(self.slots)} slots from {self.source} to {self.target}"


@dataclass(frozen=True)
class SetSlotOwner:
    """``CLUSTER SETSLOT <slot> NODE <owner>`` on every node: closes a migration whose keys
    already all moved (its owner changed, but some nodes still show it open)."""

    slots: slots.Ranges
    owner_id: str
    nodes: tuple[str, ...]

    def describe(self) -> str:
        return f"close migrated slots {slots.format_ranges(self.slots)} on {len(self.nodes)} nodes"


@dataclass(frozen=True)
class StabilizeSlots:
    """``CLUSTER SETSLOT <slot> STABLE``: drop a migration whose other side is gone."""

    address: str
    slots: slots.Ranges

    def describe(self) -> str:
        return f"abandon migration of slots {slots.format_ranges(self.slots)} on {self.address}"


@dataclass(frozen=True)
class Failover:
    """``CLUSTER FAILOVER FORCE`` on a replica whose master the cluster marked failed."""

    address: str
    node_id: str
    master_id: str

    def describe(self) -> str:
        return f"promote replica {self.address} in place of failed master {self.master_id[:8]}"


@dataclass(frozen=True)
class Forget:
    """``CLUSTER FORGET`` on every node in ``via``: a node id that is gone for good."""

    node_id: str
    via: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        return f"forget node {self.node_id[:8]} ({self.reason})"


@dataclass(frozen=True)
class ResetNode:
    """``CLUSTER RESET HARD`` (after ``FLUSHALL`` when its keys are served by no slot of it):
    the node leaves whatever cluster it thinks it is in and starts over empty with a new id."""

    address: str
    node_id: str
    reason: str

    def describe(self) -> str:
        return f"reset node {self.address} ({self.reason})"


Action = (
    Meet
    | AddSlots
    | Replicate
    | MoveSlots
    | SetSlotOwner
    | StabilizeSlots
    | Failover
    | Forget
    | ResetNode
)
