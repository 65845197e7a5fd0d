"""Forming, healing and reshaping the Redis Cluster of a RealtimeApp.

The public surface (import this package, not its modules)::

    from channelworks_operator import rediscluster

    shape = rediscluster.Shape(shards=3, replicas_per_shard=1)
    # every pod of the StatefulSet by ordinal: "podIP:6379" when ready, else None
    result = await rediscluster.ensure(pods, shape, password=password, log=logger)
    result.converged      # exactly the shape, healthy
    result.waiting        # why not (for a condition message); () when converged
    result.actions        # what was done (for events), () when nothing was needed
    result.status         # ClusterStatus: ready_nodes, cluster_state, slots_ok, masters, ...
    replicas = rediscluster.statefulset_replicas(current, shape, converged=result.converged)

    status = await rediscluster.read_status(pods, password=password)   # only looks

The StatefulSet grows before ``ensure`` is asked for more shards, and shrinks only after it
converged on fewer (``statefulset_replicas``): the pods above the shape are drained, forgotten and
reset by then. ``ensure`` is idempotent and level-triggered: call it from every reconcile.

Layers, each importing only those before it: ``exceptions``, ``slots`` → ``topology`` →
``actions`` → ``placement`` → ``planning`` and ``status`` (pure, no I/O) → ``connections`` →
``migration`` → ``executor`` → ``converge``.
"""

from channelworks_operator.rediscluster.actions import Action
from channelworks_operator.rediscluster.converge import (
    Result,
    ensure,
    read_status,
    statefulset_replicas,
)
from channelworks_operator.rediscluster.exceptions import (
    ActionFailed,
    InvalidShape,
    RedisClusterError,
)
from channelworks_operator.rediscluster.status import ClusterStatus, describe
from channelworks_operator.rediscluster.topology import Shape

__all__ = [
    "Action",
    "ActionFailed",
    "ClusterStatus",
    "InvalidShape",
    "RedisClusterError",
    "Result",
    "Shape",
    "describe",
    "ensure",
    "read_status",
    "statefulset_replicas",
]
