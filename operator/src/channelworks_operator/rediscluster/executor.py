"""Carrying out one planned action against the nodes."""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError, ResponseError

from channelworks_operator.rediscluster import actions as act
from channelworks_operator.rediscluster import exceptions, migration, topology
from channelworks_operator.rediscluster.connections import Connections, text

logger = logging.getLogger(__name__)

FAILOVER_WAIT = 10.0
_POLL = 0.1


async def run(
    connections: Connections, action: act.Action, *, deadline: float | None = None
) -> None:
    """Carry out ``action``; a refused or failed command raises ``ActionFailed``."""
    try:
        await _run(connections, action, deadline)
    except exceptions.ActionFailed:
        raise
    except (RedisError, OSError, TimeoutError, exceptions.RedisClusterError) as error:
        raise exceptions.ActionFailed(
            action.describe(), f"{type(error).__name__}: {error}"
        ) from error


async def _run(connections: Connections, action: act.Action, deadline: float | None) -> None:
    match action:
        case act.Meet():
            await connections.command(
                action.via, "CLUSTER", "MEET", action.host, action.port, action.bus_port
            )
        case act.AddSlots():
            bounds = [bound for pair in action.slots for bound in pair]
            await _expect(connections, action.address, action.node_id, action)
            await connections.command(action.address, "CLUSTER", "ADDSLOTSRANGE", *bounds)
        case act.Replicate():
            await _replicate(connections, action)
        case act.MoveSlots():
            await migration.move_slots(connections, action, deadline=deadline)
        case act.SetSlotOwner():
            for address in action.nodes:
                await connections.pipeline(
                    address,
                    [
                        ("CLUSTER", "SETSLOT", slot, "NODE", action.owner_id)
                        for first, last in action.slots
                        for slot in range(first, last + 1)
                    ],
                )
        case act.StabilizeSlots():
            await connections.pipeline(
                action.address,
                [
                    ("CLUSTER", "SETSLOT", slot, "STABLE")
                    for first, last in action.slots
                    for slot in range(first, last + 1)
                ],
            )
        case act.Failover():
            await _failover(connections, action)
        case act.Forget():
            for address in action.via:
                await _forget(connections, address, action.node_id)
        case act.ResetNode():
            await _reset(connections, action)


async def _myself(connections: Connections, address: str) -> tuple[topology.NodeEntry, int]:
    nodes, keys = await connections.pipeline(address, [("CLUSTER", "NODES"), ("DBSIZE",)])
    table = topology.parse_cluster_nodes(text(nodes))
    for entry in table:
        if entry.myself:
            return entry, int(keys)
    raise exceptions.ParseError(f"{address}: CLUSTER NODES has no 'myself' line")


async def _expect(
    connections: Connections, address: str, node_id: str, action: act.Action
) -> tuple[topology.NodeEntry, int]:
    """The node at ``address`` is still the one planned for (a pod may have been replaced)."""
    me, keys = await _myself(connections, address)
    if me.node_id != node_id:
        raise exceptions.ActionFailed(
            action.describe(), f"{address} is now node {me.node_id[:8]}, not {node_id[:8]}"
        )
    return me, keys


async def _replicate(connections: Connections, action: act.Replicate) -> None:
    me, keys = await _expect(connections, action.address, action.node_id, action)
    if me.master_id == action.master_id:
        return
    if me.is_master and keys:
        if me.slots:
            raise exceptions.ActionFailed(action.describe(), "it still serves slots")
        # Keys on a master that serves no slot are unreachable leftovers; a replica starts empty.
        logger.info("flushing %d unreachable keys on %s before it replicates", keys, action.address)
        await connections.command(action.address, "FLUSHALL")
    await connections.command(action.address, "CLUSTER", "REPLICATE", action.master_id)


async def _failover(connections: Connections, action: act.Failover) -> None:
    try:
        await connections.command(action.address, "CLUSTER", "FAILOVER", "FORCE")
    except ResponseError as error:
        if "master" not in str(error).lower():  # already promoted: nothing left to do
            raise
    loop = asyncio.get_running_loop()
    until = loop.time() + FAILOVER_WAIT
    while loop.time() < until:
        me, _ = await _myself(connections, action.address)
        if me.is_master:
            return
        await asyncio.sleep(_POLL)
    logger.warning("%s was not promoted within %.0fs", action.address, FAILOVER_WAIT)


async def _forget(connections: Connections, address: str, node_id: str) -> None:
    try:
        await connections.command(address, "CLUSTER", "FORGET", node_id)
    except ResponseError as error:
        if "unknown node" not in str(error).lower():
            raise


async def _reset(connections: Connections, action: act.ResetNode) -> None:
    me, keys = await _expect(connections, action.address, action.node_id, action)
    if me.slots:
        raise exceptions.ActionFailed(action.describe(), "it still serves slots")
    if me.is_master and keys:
        # A master serving no slot holds only unreachable leftovers (RESET refuses otherwise).
        await connections.command(action.address, "FLUSHALL")
    await connections.command(action.address, "CLUSTER", "RESET", "HARD")
