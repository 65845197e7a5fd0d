"""What the cluster looks like: the desired shape and the observed state of every pod.

Pure values with no I/O. ``CLUSTER NODES`` replies are parsed here; ``observe`` fills these in and
``planning`` reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from channelworks_operator.rediscluster import exceptions, slots

DEFAULT_PORT = 6379


@dataclass(frozen=True)
class Shape:
    """The cluster asked for: ``shards`` masters, each with ``replicas_per_shard`` replicas.

    Pods are laid out shard by shard in StatefulSet order: pods ``k*(1+R) .. k*(1+R)+R`` form
    shard group ``k`` and pod ``k*(1+R)`` is its first choice of master, so growing or shrinking
    the StatefulSet by whole groups adds or removes whole shards.
    """

    shards: int
    replicas_per_shard: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= slots.SLOTS:
            raise exceptions.InvalidShape(
                f"shards must be between 1 and {slots.SLOTS}, got {self.shards}"
            )
        if self.replicas_per_shard < 0:
            raise exceptions.InvalidShape(
                f"replicasPerShard must be 0 or more, got {self.replicas_per_shard}"
            )

    @property
    def group_size(self) -> int:
        return 1 + self.replicas_per_shard

    @property
    def size(self) -> int:
        """Pods the shape needs: ``shards * (1 + replicas_per_shard)``."""
        return self.shards * self.group_size

    def group(self, ordinal: int) -> int:
        """The shard group a pod belongs to by its ordinal."""
        return ordinal // self.group_size


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, or a bare host) into host and port."""
    text = address.strip()
    if not text:
        raise exceptions.InvalidShape("a pod address is empty")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    try:
        return host, int(port) if port else DEFAULT_PORT
    except ValueError as error:
        raise exceptions.InvalidShape(f"pod address {address!r} has no valid port") from error


@dataclass(frozen=True)
class NodeEntry:
    """One line of ``CLUSTER NODES``: how one node sees one node of the cluster."""

    node_id: str
    host: str
    port: int
    bus_port: int
    flags: frozenset[str]
    master_id: str | None
    config_epoch: int
    connected: bool
    slots: slots.Ranges
    migrating: tuple[tuple[int, str], ...] = ()
    """``(slot, target id)`` this node is moving away (only on a node's own line)."""
    importing: tuple[tuple[int, str], ...] = ()
    """``(slot, source id)`` this node is taking in (only on a node's own line)."""

    @property
    def myself(self) -> bool:
        return "myself" in self.flags

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_replica(self) -> bool:
        return "slave" in self.flags

    @property
    def in_handshake(self) -> bool:
        return "handshake" in self.flags

    @property
    def failed(self) -> bool:
        """The cluster agreed this node is down (``fail``)."""
        return "fail" in self.flags

    @property
    def suspected(self) -> bool:
        """This observer cannot reach the node (``fail?``)."""
        return "fail?" in self.flags

    @property
    def lost(self) -> bool:
        """Down for good as far as the cluster can tell: failed, or its address now answers with
        another node id (``noaddr``)."""
        return self.failed or "noaddr" in self.flags

    @property
    def slot_count(self) -> int:
        return slots.count(self.slots)

    @classmethod
    def parse(cls, line: str) -> NodeEntry:
        # <id> <ip:port@cport[,hostname]> <flags> <master|-> <ping> <pong> <epoch> <link> <slot>...
        parts = line.split()
        if len(parts) < 8:
            raise exceptions.ParseError(f"unexpected CLUSTER NODES line: {line!r}")
        endpoint = parts[1].split(",", 1)[0]
        address, _, bus = endpoint.partition("@")
        host, _, port = address.rpartition(":")
        owned: list[slots.Range] = []
        migrating: list[tuple[int, str]] = []
        importing: list[tuple[int, str]] = []
        try:
            for item in parts[8:]:
                if item.startswith("["):
                    slot, arrow, peer = item[1:-1].partition("->-")
                    if arrow:
                        migrating.append((int(slot), peer))
                    else:
                        slot, _, peer = item[1:-1].partition("-<-")
                        importing.append((int(slot), peer))
                    continue
                first, _, last = item.partition("-")
                owned.append((int(first), int(last or first)))
            return cls(
                node_id=parts[0],
                host=host,
                port=int(port),
                bus_port=int(bus) if bus else int(port) + 10000,
                flags=frozenset(parts[2].split(",")),
                master_id=None if parts[3] == "-" else parts[3],
                config_epoch=int(parts[6]),
                connected=parts[7] == "connected",
                slots=slots.merge(owned),
                migrating=tuple(migrating),
                importing=tuple(importing),
            )
        except ValueError as error:
            raise exceptions.ParseError(f"unexpected CLUSTER NODES line: {line!r}") from error


def parse_cluster_nodes(text: str) -> tuple[NodeEntry, ...]:
    return tuple(NodeEntry.parse(line) for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class PodState:
    """One pod of the StatefulSet, as observed: its node and that node's view of the cluster."""

    ordinal: int
    address: str | None
    """As the caller gave it (``None``: the pod is not ready)."""
    host: str = ""
    """The address resolved to an IP, as MEET needs it."""
    port: int = DEFAULT_PORT
    error: str | None = None
    """Why the node could not be read, when it could not."""
    table: tuple[NodeEntry, ...] = ()
    """The node's ``CLUSTER NODES`` (its own line included)."""
    keys: int = 0
    cluster_state: str = ""

    @property
    def reachable(self) -> bool:
        return self.error is None and self.address is not None and self.me is not None

    @cached_property
    def me(self) -> NodeEntry | None:
        return next((entry for entry in self.table if entry.myself), None)

    @property
    def node(self) -> NodeEntry:
        """The pod's own line; only for reachable pods."""
        if self.me is None:
            raise exceptions.RedisClusterError(f"pod {self.ordinal} was not observed")
        return self.me

    @cached_property
    def known(self) -> Mapping[str, NodeEntry]:
        """The nodes this node knows, by id (handshakes left out)."""
        return {entry.node_id: entry for entry in self.table if not entry.in_handshake}

    @property
    def alone(self) -> bool:
        """The node knows no other node: a fresh (or reset) node."""
        return len(self.known) <= 1

    def owners(self) -> frozenset[tuple[str, slots.Ranges]]:
        """Who serves which slots, in this node's view."""
        return frozenset((e.node_id, e.slots) for e in self.known.values() if e.slots)

    def roles(self) -> frozenset[tuple[str, str | None]]:
        """Which node replicates which (``None``: a master), in this node's view."""
        return frozenset((e.node_id, e.master_id) for e in self.known.values())


@dataclass(frozen=True)
class Observation:
    """Every pod of the StatefulSet in ordinal order, observed at one moment."""

    pods: tuple[PodState, ...]
    by_id: Mapping[str, PodState] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_id = {pod.node.node_id: pod for pod in self.pods if pod.reachable}
        object.__setattr__(self, "by_id", by_id)

    @property
    def reachable(self) -> list[PodState]:
        return [pod for pod in self.pods if pod.reachable]

    @property
    def anchor(self) -> PodState | None:
        """The pod whose view to trust: it sees the most slots served, then the most nodes
        (so a formed cluster wins over a fresh node, and the largest group over a smaller one)."""

        def rank(pod: PodState) -> tuple[int, int, int]:
            covered = sum(entry.slot_count for entry in pod.known.values())
            return (covered, len(pod.known), -pod.ordinal)

        return max(self.reachable, key=rank, default=None)

    def all_reachable(self, count: int | None = None) -> bool:
        """Every pod (or the first ``count``) exists and answers."""
        wanted = len(self.pods) if count is None else count
        return len(self.pods) >= wanted and all(pod.reachable for pod in self.pods[:wanted])
