"""Where masters, replicas and slots should be: pure choices over the pods' current roles.

``owned`` maps a node id to the slots it serves (in the cluster's agreed view). Choices keep what
already works (a master serving slots stays one, a replica stays with its master) and otherwise
follow the shard-group layout of ``Shape``: pod ``k*(1+R)`` is the master of group ``k``, the
next ``R`` pods its replicas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from channelworks_operator.rediscluster import slots as sl
from channelworks_operator.rediscluster.topology import PodState, Shape

Owned = Mapping[str, sl.Ranges]


def _count(pod: PodState, owned: Owned) -> int:
    return sl.count(owned.get(pod.node.node_id, ()))


def _layout_rank(pod: PodState, shape: Shape, groups: set[int]) -> tuple[bool, bool, int]:
    """Prefer pods of groups without a master yet, then each group's first pod."""
    return (shape.group(pod.ordinal) in groups, pod.ordinal % shape.group_size != 0, pod.ordinal)


def choose_masters(pods: Sequence[PodState], owned: Owned, shape: Shape) -> list[PodState]:
    """Up to ``shape.shards`` of ``pods`` to serve slots: masters serving slots first (one per
    shard group, most slots first, then any), then empty masters by layout."""
    holders = sorted(
        (pod for pod in pods if pod.node.is_master and _count(pod, owned)),
        key=lambda pod: (-_count(pod, owned), pod.ordinal),
    )
    chosen: list[PodState] = []
    groups: set[int] = set()
    for distinct in (True, False):
        for pod in holders:
            fits = not distinct or shape.group(pod.ordinal) not in groups
            if len(chosen) < shape.shards and pod not in chosen and fits:
                chosen.append(pod)
                groups.add(shape.group(pod.ordinal))
    empty = [pod for pod in pods if pod.node.is_master and not _count(pod, owned)]
    while len(chosen) < shape.shards and empty:
        best = min(empty, key=lambda pod: _layout_rank(pod, shape, groups))
        empty.remove(best)
        chosen.append(best)
        groups.add(shape.group(best.ordinal))
    return sorted(chosen, key=lambda pod: pod.ordinal)


def replicas_to_promote(
    pods: Sequence[PodState], masters: Sequence[PodState], shape: Shape
) -> list[PodState]:
    """Replicas to turn into (empty) masters when there are too few masters."""
    groups = {shape.group(pod.ordinal) for pod in masters}
    spare = sorted(
        (pod for pod in pods if pod.node.is_replica),
        key=lambda pod: _layout_rank(pod, shape, groups),
    )
    return spare[: max(shape.shards - len(masters), 0)]


def fill_gaps(
    uncovered: Sequence[int], masters: Sequence[PodState], owned: Owned
) -> list[tuple[PodState, sl.Ranges]]:
    """Give slots nobody serves to the masters furthest below an even share."""
    by_load = sorted(masters, key=lambda pod: (-_count(pod, owned), pod.ordinal))
    deficits = sorted(
        (
            (want - _count(pod, owned), pod)
            for want, pod in zip(sl.quotas(len(by_load)), by_load, strict=True)
        ),
        key=lambda item: (-item[0], item[1].ordinal),
    )
    given: list[tuple[PodState, sl.Ranges]] = []
    start = 0
    for deficit, pod in deficits:
        take = uncovered[start : start + max(deficit, 0)]
        start += len(take)
        if take:
            given.append((pod, sl.to_ranges(take)))
    if start < len(uncovered):  # deficits always cover the gaps; never leave one regardless
        given.append((deficits[-1][1], sl.to_ranges(uncovered[start:])))
    return given


def assign_replicas(
    pods: Sequence[PodState],
    masters: Sequence[PodState],
    owned: Owned,
    shape: Shape,
    waiting_for_failover: set[str],
) -> list[tuple[PodState, PodState]]:
    """``(pod, master)`` pairs: pods that should start replicating ``master``.

    Free pods (empty masters, replicas of nodes that are not chosen masters) go to masters lacking
    replicas, preferring their own shard group, else to the master with fewest; replicas beyond
    ``replicas_per_shard`` move only to a master that lacks one. Replicas of a failed master in
    ``waiting_for_failover`` are left alone: one of them is about to take over.
    """
    want = shape.replicas_per_shard
    master_ids = {pod.node.node_id for pod in masters}
    followers: dict[str, list[PodState]] = {node_id: [] for node_id in master_ids}
    free: list[PodState] = []
    for pod in pods:
        node = pod.node
        if node.node_id in master_ids:
            continue
        if node.is_master:
            if not _count(pod, owned):
                free.append(pod)  # an empty master, or a drained one
        elif node.master_id in master_ids:
            followers[node.master_id].append(pod)
        elif node.master_id not in waiting_for_failover:
            free.append(pod)
    by_id = {pod.node.node_id: pod for pod in masters}
    surplus: list[PodState] = []
    for master_id, replicas in followers.items():
        group = shape.group(by_id[master_id].ordinal)
        replicas.sort(key=lambda pod: (shape.group(pod.ordinal) != group, pod.ordinal))
        surplus.extend(replicas[want:])
        del replicas[want:]
    lacking = [m for m in masters if len(followers[m.node.node_id]) < want]
    moves: list[tuple[PodState, PodState]] = []
    for pod in [*free, *surplus]:
        candidates = lacking or (list(masters) if pod in free else [])
        if not candidates:
            continue
        master = min(
            candidates,
            key=lambda m: (
                shape.group(m.ordinal) != shape.group(pod.ordinal),
                len(followers[m.node.node_id]),
                m.ordinal,
            ),
        )
        followers[master.node.node_id].append(pod)
        if master in lacking and len(followers[master.node.node_id]) >= want:
            lacking.remove(master)
        moves.append((pod, master))
    return moves


def rebalance(
    members: Sequence[PodState], masters: Sequence[PodState], owned: Owned
) -> list[tuple[PodState, PodState, sl.Ranges]]:
    """``(source, target, slots)`` moves after which ``masters`` serve all slots evenly: other
    members give all their slots, masters above an even share their highest slots."""
    chosen = {pod.node.node_id for pod in masters}
    givers: list[tuple[PodState, list[int]]] = [
        (pod, sl.expand(owned.get(pod.node.node_id, ())))
        for pod in sorted(members, key=lambda pod: pod.ordinal)
        if pod.node.node_id not in chosen and _count(pod, owned)
    ]
    by_load = sorted(masters, key=lambda pod: (-_count(pod, owned), pod.ordinal))
    takers: list[tuple[PodState, int]] = []
    for want, pod in zip(sl.quotas(len(by_load)), by_load, strict=True):
        have = sl.expand(owned.get(pod.node.node_id, ()))
        if len(have) > want:
            givers.append((pod, have[want:]))
        elif len(have) < want:
            takers.append((pod, want - len(have)))
    takers.sort(key=lambda item: item[0].ordinal)
    moves: list[tuple[PodState, PodState, sl.Ranges]] = []
    for giver, given in givers:
        while given and takers:
            taker, need = takers[0]
            chunk, given = given[:need], given[need:]
            moves.append((giver, taker, sl.to_ranges(chunk)))
            if need > len(chunk):
                takers[0] = (taker, need - len(chunk))
            else:
                takers.pop(0)
    return moves
