"""Every error the rediscluster package raises."""

from __future__ import annotations


class RedisClusterError(Exception):
    """Base of the errors of this package."""


class InvalidShape(RedisClusterError, ValueError):
    """The asked-for shape (shards, replicas, pod list) cannot describe a Redis Cluster."""


class ParseError(RedisClusterError):
    """A reply of a Redis node was not in the format this package understands."""


class ActionFailed(RedisClusterError):
    """One step of forming or reshaping the cluster failed; running ``ensure`` again resumes."""

    def __init__(self, action: str, cause: str) -> None:
        super().__init__(f"failed to {action}: {cause}")
        self.action = action
        self.cause = cause
