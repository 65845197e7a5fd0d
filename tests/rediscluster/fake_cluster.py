"""A toy model of a Redis Cluster for testing the planner without Redis.

It renders ``CLUSTER NODES`` text per pod (so the real parser is exercised), applies planned
actions the way Redis would (gossip is instant: every member knows every member), and checks after
each step that no slot is served twice and none silently disappears.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from channelworks_operator.rediscluster import actions as act
from channelworks_operator.rediscluster import planning, slots, topology

BASE_PORT = 7000
_ids = itertools.count(1)


def new_id() -> str:
    return f"{next(_ids):040x}"


@dataclass
class Node:
    node_id: str
    port: int
    master_id: str | None = None
    slots: set[int] = field(default_factory=set)
    failed: bool = False
    keys: dict[int, int] = field(default_factory=dict)  # slot -> number of keys
    open_slots: list[str] = field(default_factory=list)  # "[slot->-id]" tokens, own line only
    detached: bool = False

    def line(self, myself: bool) -> str:
        flags = ["myself"] if myself else []
        flags.append("slave" if self.master_id else "master")
        if self.failed:
            flags.append("fail")
        ranges = " ".join(str(a) if a == b else f"{a}-{b}" for a, b in slots.to_ranges(self.slots))
        if myself and self.open_slots:
            ranges = " ".join([ranges, *self.open_slots])
        master = self.master_id or "-"
        link = "disconnected" if self.failed else "connected"
        return (
            f"{self.node_id} 127.0.0.1:{self.port}@{self.port + 10000} {','.join(flags)} "
            f"{master} 0 0 1 {link} {ranges}"
        ).rstrip()


class FakeCluster:
    """Pods by ordinal (``None``: not ready) and the set of node ids that form the cluster."""

    def __init__(self, pods: int, replica_migration: bool = True) -> None:
        self.replica_migration = replica_migration
        self.pods: list[Node | None] = [Node(new_id(), BASE_PORT + i) for i in range(pods)]
        self.members: dict[str, Node] = {}  # what the cluster knows, ghosts included
        self.applied: list[act.Action] = []

    # -- what the operator sees ---------------------------------------------------------

    def addresses(self) -> list[str | None]:
        return [None if n is None else f"127.0.0.1:{n.port}" for n in self.pods]

    def observation(self) -> topology.Observation:
        states = []
        covered = self._covered()
        lines = {m.node_id: (m.line(False), m.line(True)) for m in self.members.values()}
        for ordinal, node in enumerate(self.pods):
            if node is None:
                states.append(topology.PodState(ordinal, None, error="pod is not ready"))
                continue
            if node.node_id in self.members:
                # Like Redis, a node never learns a node at its own address (the one it replaced).
                text = "\n".join(
                    lines[m.node_id][m is node]
                    for m in self.members.values()
                    if m is node or m.port != node.port
                )
                state = "ok" if covered else "fail"
            else:
                text, state = node.line(True), "fail"
            states.append(
                topology.PodState(
                    ordinal,
                    f"127.0.0.1:{node.port}",
                    host="127.0.0.1",
                    port=node.port,
                    table=topology.parse_cluster_nodes(text),
                    keys=sum(node.keys.values()),
                    cluster_state=state,
                )
            )
        return topology.Observation(tuple(states))

    def _covered(self) -> bool:
        served = [s for m in self.members.values() if not m.failed for s in m.slots]
        return len(served) == slots.SLOTS

    # -- what happens to pods -----------------------------------------------------------

    def kill(self, ordinal: int) -> Node:
        """The pod goes away; the cluster marks its node failed."""
        node = self.pods[ordinal]
        assert node is not None
        node.failed = True
        self.pods[ordinal] = None
        return node

    def promote_replica_of(self, node: Node) -> None:
        """Redis' own failover: a replica of the failed master takes its slots."""
        replica = next(m for m in self.members.values() if m.master_id == node.node_id)
        replica.master_id, replica.slots, node.slots = None, node.slots, set()
        replica.keys, node.keys = node.keys, {}

    def start_empty(self, ordinal: int) -> None:
        """The pod comes back without its volume: a fresh node with a new id."""
        while len(self.pods) <= ordinal:
            self.pods.append(None)
        self.pods[ordinal] = Node(new_id(), BASE_PORT + ordinal)

    def grow(self, count: int) -> None:
        for ordinal in range(len(self.pods), count):
            self.start_empty(ordinal)

    def shrink(self, count: int) -> None:
        for node in self.pods[count:]:
            assert node is None or node.node_id not in self.members, "removing a member pod"
        del self.pods[count:]

    def fill(self, keys_per_slot: int = 1) -> int:
        for node in self.members.values():
            node.keys = dict.fromkeys(node.slots, keys_per_slot)
        return self.total_keys()

    def total_keys(self) -> int:
        return sum(sum(n.keys.values()) for n in self.members.values() if not n.master_id)

    # -- applying actions ---------------------------------------------------------------

    def _at(self, address: str) -> Node:
        port = int(address.rpartition(":")[2])
        node = self.pods[port - BASE_PORT]
        assert node is not None, f"{address} is down"
        return node

    def apply(self, action: act.Action) -> None:
        self.applied.append(action)
        match action:
            case act.Meet():
                via = self._at(action.via)
                met = self._at(f"127.0.0.1:{action.port}")
                if not self.members:
                    self.members[via.node_id] = via
                assert via.node_id in self.members
                self.members[met.node_id] = met
            case act.AddSlots():
                node = self._at(action.address)
                wanted = set(slots.expand(action.slots))
                for other in self.members.values():
                    assert not wanted & other.slots, "ADDSLOTS of a busy slot"
                assert not node.master_id
                node.slots |= wanted
            case act.Replicate():
                node = self._at(action.address)
                assert not node.slots, "a master with slots cannot replicate"
                assert action.master_id in self.members
                node.master_id, node.keys = action.master_id, {}
            case act.MoveSlots():
                source, target = self._at(action.source), self._at(action.target)
                moved = set(slots.expand(action.slots))
                assert moved <= source.slots, "moving slots the source does not serve"
                assert not target.master_id
                source.slots -= moved
                target.slots |= moved
                for slot in moved:
                    target.keys[slot] = source.keys.pop(slot, 0)
                if self.replica_migration and not source.slots:  # a drained master follows
                    source.master_id = target.node_id
                    for follower in self.members.values():
                        if follower.master_id == source.node_id:
                            follower.master_id = target.node_id
            case act.Failover():
                failed = self.members[action.master_id]
                self.promote_replica_of(failed)
            case act.Forget():
                forgotten = self.members.pop(action.node_id)
                if any(forgotten is pod for pod in self.pods):
                    forgotten.detached = True  # must be reset before the round ends
            case act.ResetNode():
                node = self._at(action.address)
                assert not node.slots, "resetting a master with slots"
                self.members.pop(node.node_id, None)
                ordinal = node.port - BASE_PORT
                self.pods[ordinal] = Node(new_id(), node.port)
            case _:
                raise AssertionError(f"unexpected action {action}")
        self._check()

    def _check(self) -> None:
        seen: set[int] = set()
        for node in self.members.values():
            assert not seen & node.slots, "a slot served twice"
            seen |= node.slots

    def converge(self, shape: topology.Shape, rounds: int = 30) -> planning.Plan:
        """Plan and apply until nothing is left to do; return the last plan."""
        for _ in range(rounds):
            step = planning.plan(self.observation(), shape)
            if not step.actions:
                return step
            for action in step.actions:
                self.apply(action)
            detached = [pod for pod in self.pods if pod is not None and pod.detached]
            assert not detached, "a live pod's node was forgotten but not reset"
        raise AssertionError(f"no convergence after {rounds} rounds: {self.applied[-5:]}")

    # -- what a test asserts on ---------------------------------------------------------

    def masters(self) -> list[Node]:
        return [n for n in self.members.values() if n.slots]

    def replicas_of(self, node: Node) -> list[Node]:
        return [n for n in self.members.values() if n.master_id == node.node_id]

    def ordinal_of(self, node: Node) -> int:
        return node.port - BASE_PORT
