"""Deciding the next steps from an observation: pure, no I/O.

``plan(observation, shape)`` returns the actions of the first phase that has work, in this order:

1. *join*: reset pods that left (or never were in) the cluster, MEET pods it does not know;
2. *agree*: wait until every member sees the same nodes and slot owners (gossip settles);
3. *open slots*: finish or drop slot migrations an earlier run left half done;
4. *lost nodes*: promote a replica of a failed master, forget node ids that are gone for good;
5. *coverage*: give slots nobody serves to masters (this is how the cluster is first formed);
6. *roles*: make the right nodes replicas of the masters that lack them;
7. *balance*: move slots (and their keys) so the wanted masters serve them evenly;
8. *detach*: forget and reset the nodes of pods above the shape (after a shard-count decrease).

Running the executor on the result and planning again converges; a formed, healthy cluster of the
wanted shape plans nothing. Nothing that could lose data is planned while pods are missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from channelworks_operator.rediscluster import actions as act
from channelworks_operator.rediscluster import placement
from channelworks_operator.rediscluster import slots as sl
from channelworks_operator.rediscluster.topology import NodeEntry, Observation, PodState, Shape


@dataclass(frozen=True)
class Plan:
    actions: tuple[act.Action, ...] = ()
    waiting: tuple[str, ...] = ()
    """What blocks progress until something outside changes (pods not ready...)."""
    settling: tuple[str, ...] = ()
    """What the cluster is doing by itself right now (gossip, handshakes): look again soon."""
    converged: bool = False
    """The cluster has exactly the wanted shape and is healthy; pods above it can go."""


def plan(observation: Observation, shape: Shape) -> Plan:
    """The next actions that bring the observed cluster towards ``shape``."""
    return _Planner(observation, shape).run()


def _ordinals(pods: list[int]) -> str:
    return ", ".join(str(ordinal) for ordinal in pods)


class _Planner:
    def __init__(self, observation: Observation, shape: Shape) -> None:
        self.obs = observation
        self.shape = shape
        self.waiting: list[str] = []
        self.settling: list[str] = []
        self.size = shape.size

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> Plan:
        reachable = self.obs.reachable
        anchor = self.obs.anchor
        broken = [
            f"pod {pod.ordinal}: {pod.error}"
            for pod in self.obs.pods
            if pod.address is not None and pod.error is not None
        ]
        if anchor is None:
            return Plan(waiting=("no Redis pod is reachable", *broken[:3]))
        self.waiting.extend(broken)
        self.anchor = anchor
        self.table = self.anchor.known
        self.members = [pod for pod in reachable if pod.node.node_id in self.table]
        self.desired = [pod for pod in self.members if pod.ordinal < self.size]
        self.formed = any(entry.slots for entry in self.table.values())
        self.gone = self._gone()
        missing = [
            ordinal
            for ordinal in range(max(self.size, len(self.obs.pods)))
            if ordinal >= len(self.obs.pods) or not self.obs.pods[ordinal].reachable
        ]
        self.missing_desired = [ordinal for ordinal in missing if ordinal < self.size]
        self.all_ready = not missing
        if not self.formed and self.missing_desired:
            self.waiting.insert(
                0,
                f"waiting for pods {_ordinals(self.missing_desired)} to be ready "
                "before forming the cluster",
            )
            return self._result([])
        if self.missing_desired:
            self.waiting.append(f"pods {_ordinals(self.missing_desired)} are not ready")

        phases: list[Callable[[], list[act.Action]]] = [
            self._join,
            self._agree,
            self._open_slots,
            self._lost_nodes,
            self._coverage,
            self._roles,
            self._balance,
            self._detach,
        ]
        for phase in phases:
            planned = phase()
            if planned or self.settling:
                return self._result(planned)
        return self._result([], converged=self._converged())

    def _result(self, planned: list[act.Action], converged: bool = False) -> Plan:
        waiting = tuple(dict.fromkeys(self.waiting))
        settling = tuple(dict.fromkeys(self.settling))
        return Plan(tuple(planned), waiting, settling, converged and not waiting and not settling)

    # -- helpers ---------------------------------------------------------------------------

    def _owner_of(self) -> dict[int, str]:
        owner: dict[int, str] = {}
        for entry in self.table.values():
            for slot in sl.expand(entry.slots):
                owner[slot] = entry.node_id
        return owner

    def _slot_count(self, pod: PodState) -> int:
        return self.table[pod.node.node_id].slot_count

    def _ghosts(self) -> list[NodeEntry]:
        """Nodes some member knows that no reachable pod is (the anchor's view of them first)."""
        found: dict[str, NodeEntry] = {}
        for pod in [self.anchor, *self.members]:
            for entry in pod.known.values():
                if entry.node_id not in self.obs.by_id:
                    found.setdefault(entry.node_id, entry)
        return list(found.values())

    def _gone(self) -> set[str]:
        """Ghosts that are gone for good: some member saw them fail, or their address now
        answers with another node id."""
        endpoints = self._pod_endpoints()
        return {
            entry.node_id
            for pod in [self.anchor, *self.members]
            for entry in pod.known.values()
            if entry.node_id not in self.obs.by_id
            and (entry.lost or (entry.host, entry.port) in endpoints)
        }

    def _pod_endpoints(self) -> set[tuple[str, int]]:
        return {(pod.host, pod.port) for pod in self.obs.reachable}

    @staticmethod
    def _handshaking(observer: PodState, pod: PodState) -> bool:
        """``observer`` is in the middle of meeting ``pod``."""
        return any(
            entry.in_handshake and (entry.host, entry.port) == (pod.host, pod.port)
            for entry in observer.table
        )

    def _meet(self, via: PodState, pod: PodState) -> act.Meet:
        return act.Meet(
            via=str(via.address),
            host=pod.host,
            port=pod.port,
            bus_port=pod.node.bus_port,
            node_id=pod.node.node_id,
        )

    # -- 1. join ---------------------------------------------------------------------------

    def _join(self) -> list[act.Action]:
        planned: list[act.Action] = []
        anchor_id = self.anchor.node.node_id
        for pod in self.obs.reachable:
            if pod is self.anchor:
                continue
            if pod.node.node_id not in self.table:
                if pod.ordinal >= self.size:
                    continue  # above the shape and not in the cluster: nothing to do
                if pod.node.slots:
                    self.waiting.append(
                        f"pod {pod.ordinal} serves slots of another cluster; not touching it"
                    )
                elif self.formed and not pod.alone:
                    planned.append(
                        act.ResetNode(str(pod.address), pod.node.node_id, "it left the cluster")
                    )
                else:
                    planned.extend(self._introduce(self.anchor, pod))
            elif anchor_id not in pod.known:
                planned.extend(self._introduce(pod, self.anchor))
            elif self._moved(self.table[pod.node.node_id], pod):
                # The pod came back on another IP and the cluster has not heard of it yet.
                planned.extend(self._introduce(self.anchor, pod))
        return planned

    def _introduce(self, via: PodState, pod: PodState) -> list[act.Action]:
        if self._handshaking(via, pod):
            self.settling.append(f"handshake with pod {pod.ordinal} in progress")
            return []
        return [self._meet(via, pod)]

    @staticmethod
    def _moved(entry: NodeEntry, pod: PodState) -> bool:
        """The cluster has the pod's node at an old address it cannot reach any more."""
        unreachable = not entry.connected or entry.suspected or entry.failed
        return unreachable and (entry.host, entry.port) != (pod.host, pod.port)

    # -- 2. agree --------------------------------------------------------------------------

    def _agree(self) -> list[act.Action]:
        """Members must see the same nodes, slot owners and replicas (node ids that are gone for
        good left out: a node that replaced one at the same address never learns the old id)."""

        def view(pod: PodState) -> tuple[object, ...]:
            return (
                set(pod.known) - self.gone,
                {owner for owner in pod.owners() if owner[0] not in self.gone},
                {role for role in pod.roles() if role[0] not in self.gone},
            )

        expected = view(self.anchor)
        for pod in self.members:
            ids, owners, roles = view(pod)
            if ids != expected[0]:
                self.settling.append(f"pod {pod.ordinal} does not know every node yet")
            elif owners != expected[1]:
                self.settling.append(f"pod {pod.ordinal} does not agree on the slot owners yet")
            elif roles != expected[2]:
                self.settling.append(f"pod {pod.ordinal} does not agree on the replicas yet")
        return []

    # -- 3. open slots ---------------------------------------------------------------------

    def _open_slots(self) -> list[act.Action]:
        states: dict[int, list[tuple[PodState, str]]] = {}  # slot -> (node with state, target)
        for pod in self.members:
            for slot, peer in pod.node.migrating:
                states.setdefault(slot, []).append((pod, peer))
            for slot, _source in pod.node.importing:
                states.setdefault(slot, []).append((pod, pod.node.node_id))
        if not states:
            return []
        owner_of = self._owner_of()
        moves: dict[tuple[str, str], list[int]] = {}
        closes: dict[str, list[int]] = {}
        stabilize: dict[str, list[int]] = {}
        for slot, holders in sorted(states.items()):
            targets = {target for _, target in holders}
            owner = owner_of.get(slot)
            target = next(iter(targets)) if len(targets) == 1 else None
            target_pod = self.obs.by_id.get(target) if target else None
            owner_pod = self.obs.by_id.get(owner) if owner else None
            usable = (
                target_pod is not None and target_pod in self.members and target_pod.node.is_master
            )
            if usable and owner is not None and owner == target:
                closes.setdefault(owner, []).append(slot)
            elif usable and owner_pod is not None and owner_pod in self.members:
                moves.setdefault((owner_pod.node.node_id, str(target)), []).append(slot)
            else:
                for pod, _ in holders:
                    stabilize.setdefault(str(pod.address), []).append(slot)
        planned: list[act.Action] = []
        masters = tuple(str(pod.address) for pod in self.members if pod.node.is_master)
        for (source_id, target_id), moved in moves.items():
            planned.append(self._move(source_id, target_id, sl.to_ranges(moved), masters))
        for owner, closed in closes.items():
            planned.append(act.SetSlotOwner(sl.to_ranges(closed), owner, masters))
        for address, dropped in stabilize.items():
            planned.append(act.StabilizeSlots(address, sl.to_ranges(dropped)))
        return planned

    def _move(
        self, source_id: str, target_id: str, ranges: sl.Ranges, masters: tuple[str, ...]
    ) -> act.MoveSlots:
        source, target = self.obs.by_id[source_id], self.obs.by_id[target_id]
        return act.MoveSlots(
            source=str(source.address),
            source_id=source_id,
            target=str(target.address),
            target_id=target_id,
            target_host=target.host,
            target_port=target.port,
            slots=ranges,
            notify=tuple(a for a in masters if a not in (source.address, target.address)),
        )

    # -- 4. lost nodes ---------------------------------------------------------------------

    def _lost_nodes(self) -> list[act.Action]:
        planned: list[act.Action] = []
        for ghost in self._ghosts():
            gone = ghost.node_id in self.gone
            followers = [pod for pod in self.members if pod.node.master_id == ghost.node_id]
            if ghost.slots:
                if not gone:
                    if ghost.suspected and self.all_ready:
                        self.settling.append(f"master {ghost.node_id[:8]} is not responding")
                    elif self.all_ready:
                        self.waiting.append(
                            f"node {ghost.node_id[:8]} at {ghost.host}:{ghost.port} serves slots "
                            "but is not a pod of this cluster"
                        )
                    continue
                promotable = [pod for pod in followers if pod.node.is_replica]
                if promotable:
                    best = min(promotable, key=lambda pod: pod.ordinal)
                    planned.append(
                        act.Failover(str(best.address), best.node.node_id, ghost.node_id)
                    )
                elif self.all_ready:
                    planned.append(self._forget(ghost, "its master pod came back empty"))
                else:
                    self.waiting.append(
                        f"master {ghost.node_id[:8]} is lost with no replica; its slots are "
                        "re-taken once every pod is ready"
                    )
            elif gone and self.all_ready and not followers:
                planned.append(self._forget(ghost, "its pod came back as a new node"))
            elif ghost.suspected and self.all_ready:  # the cluster marks it failed soon
                self.settling.append(f"node {ghost.node_id[:8]} is not responding")
        return planned

    def _forget(self, ghost: NodeEntry, reason: str) -> act.Forget:
        via = tuple(
            str(pod.address)
            for pod in self.members
            if ghost.node_id in pod.known and pod.node.master_id != ghost.node_id
        )
        return act.Forget(ghost.node_id, via, reason)

    # -- 5. coverage -----------------------------------------------------------------------

    def _owned(self) -> dict[str, sl.Ranges]:
        return {node_id: entry.slots for node_id, entry in self.table.items() if entry.slots}

    def _masters(self) -> list[PodState]:
        return placement.choose_masters(self.desired, self._owned(), self.shape)

    def _coverage(self) -> list[act.Action]:
        owner_of = self._owner_of()
        uncovered = [slot for slot in range(sl.SLOTS) if slot not in owner_of]
        if not uncovered:
            return []
        masters = self._masters()
        if not self.formed:
            if len(masters) < self.shape.shards:
                self.waiting.append(
                    f"only {len(masters)} empty masters for {self.shape.shards} shards"
                )
                return []
            given = list(zip(masters, sl.even_split(len(masters)), strict=True))
        elif masters:
            given = placement.fill_gaps(uncovered, masters, self._owned())
        else:
            self.waiting.append(f"{len(uncovered)} slots are unserved and no master can take them")
            return []
        return [act.AddSlots(str(pod.address), pod.node.node_id, ranges) for pod, ranges in given]

    # -- 6. roles --------------------------------------------------------------------------

    def _roles(self) -> list[act.Action]:
        masters = self._masters()
        if len(masters) < self.shape.shards:
            promote = placement.replicas_to_promote(self.desired, masters, self.shape)
            if self.all_ready and promote:
                return [
                    act.ResetNode(str(pod.address), pod.node.node_id, "to become a new master")
                    for pod in promote
                ]
            self.waiting.append(f"{len(masters)} of {self.shape.shards} masters available")
        failing = {ghost.node_id for ghost in self._ghosts() if ghost.slots}
        pairs = placement.assign_replicas(self.desired, masters, self._owned(), self.shape, failing)
        return [
            act.Replicate(
                str(pod.address), pod.node.node_id, master.node.node_id, str(master.address)
            )
            for pod, master in pairs
        ]

    # -- 7. balance ------------------------------------------------------------------------

    def _balance(self) -> list[act.Action]:
        masters = self._masters()
        if len(masters) < self.shape.shards:
            return []
        if not self.all_ready:
            self.waiting.append("slots are rebalanced once every pod is ready")
            return []
        unsettled = [pod for pod in self.members if pod.cluster_state != "ok"]
        for pod in unsettled:  # a target that is not ok yet refuses MIGRATE
            self.settling.append(f"pod {pod.ordinal} reports cluster_state {pod.cluster_state}")
        if unsettled:
            return []
        addresses = tuple(str(pod.address) for pod in self.members if pod.node.is_master)
        return [
            self._move(source.node.node_id, target.node.node_id, ranges, addresses)
            for source, target, ranges in placement.rebalance(self.members, masters, self._owned())
        ]

    # -- 8. detach -------------------------------------------------------------------------

    def _detach(self) -> list[act.Action]:
        leaving = [pod for pod in self.members if pod.ordinal >= self.size]
        staying = [pod for pod in self.members if pod.ordinal < self.size]
        forgets: list[act.Action] = []
        resets: list[act.Action] = []
        for pod in leaving:
            if self._slot_count(pod):
                self.waiting.append(f"pod {pod.ordinal} still serves slots")
                continue
            node_id = pod.node.node_id
            via = tuple(
                str(other.address)
                for other in staying
                if node_id in other.known and other.node.master_id != node_id
            )
            forgets.append(act.Forget(node_id, via, f"pod {pod.ordinal} is above the shape"))
            resets.append(act.ResetNode(str(pod.address), node_id, "its pod is being removed"))
        return [*forgets, *resets]

    # -- converged? ------------------------------------------------------------------------

    def _converged(self) -> bool:
        """Nothing left to do: is the cluster exactly the shape? If not, say why."""
        problem = self._shape_problem()
        if problem is not None:
            self.waiting.append(problem)
            return False
        for pod in self.members:
            if pod.cluster_state != "ok":
                self.settling.append(f"pod {pod.ordinal} reports cluster_state {pod.cluster_state}")
        return not self.settling

    def _shape_problem(self) -> str | None:
        shape = self.shape
        masters = self._masters()
        master_ids = {pod.node.node_id for pod in masters}
        owners = {entry.node_id for entry in self.table.values() if entry.slots}
        replicas = [pod for pod in self.desired if pod.node.master_id in master_ids]
        if len(self.desired) != self.size:
            return f"{len(self.desired)} of {self.size} pods are in the cluster"
        if len(masters) != shape.shards or owners != master_ids:
            return f"{len(owners)} masters serve slots, {shape.shards} wanted"
        if len(self.members) != self.size:
            return f"{len(self.members) - self.size} pods above the shape are still in the cluster"
        strangers = [e.node_id[:8] for e in self.table.values() if e.node_id not in self.obs.by_id]
        if strangers:
            return f"the cluster knows nodes that are no pod of it: {', '.join(strangers)}"
        if len(replicas) != shape.shards * shape.replicas_per_shard:
            return f"{len(replicas)} replicas, {shape.shards * shape.replicas_per_shard} wanted"
        return None
