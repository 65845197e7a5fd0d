"""What the operator reports about the cluster: pure, from an observation."""

from __future__ import annotations

from dataclasses import dataclass

from channelworks_operator.rediscluster import slots as sl
from channelworks_operator.rediscluster.topology import Observation


@dataclass(frozen=True)
class ClusterStatus:
    """The cluster as the operator's status shows it (``status.channelLayer``)."""

    ready_nodes: int
    """Pods whose node is in the cluster, not flagged failing, and sees ``cluster_state:ok``."""
    nodes: int
    """Pods that answered."""
    cluster_state: str
    """``ok`` or ``fail`` (as Redis says), ``unformed`` (no slot assigned yet) or
    ``unreachable`` (no pod answered)."""
    slots_assigned: int
    slots_ok: int
    """Slots served by a master not flagged failing."""
    masters: int
    """Masters serving slots."""
    replicas: int
    open_slots: int
    """Slots in the middle of a migration."""


def summarize(observation: Observation) -> ClusterStatus:
    anchor = observation.anchor
    if anchor is None:
        return ClusterStatus(0, 0, "unreachable", 0, 0, 0, 0, 0)
    table = anchor.known
    members = [pod for pod in observation.reachable if pod.node.node_id in table]
    healthy = {node_id for node_id, entry in table.items() if not (entry.failed or entry.suspected)}
    ready = [pod for pod in members if pod.node.node_id in healthy and pod.cluster_state == "ok"]
    serving = [entry for entry in table.values() if entry.is_master and entry.slots]
    assigned = sum(entry.slot_count for entry in serving)
    open_slots = {slot for pod in members for slot, _ in (*pod.node.migrating, *pod.node.importing)}
    return ClusterStatus(
        ready_nodes=len(ready),
        nodes=len(observation.reachable),
        cluster_state=anchor.cluster_state if assigned else "unformed",
        slots_assigned=assigned,
        slots_ok=sum(e.slot_count for e in serving if e.node_id in healthy),
        masters=len(serving),
        replicas=sum(
            1 for entry in table.values() if entry.is_replica and entry.node_id in healthy
        ),
        open_slots=len(open_slots),
    )


def describe(status: ClusterStatus) -> str:
    """One line for a condition message."""
    return (
        f"{status.ready_nodes} nodes ready, cluster_state {status.cluster_state}, "
        f"{status.slots_ok}/{sl.SLOTS} slots served by {status.masters} masters, "
        f"{status.replicas} replicas"
    )
