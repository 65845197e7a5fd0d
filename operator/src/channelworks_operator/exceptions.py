"""Every error of the operator, and the retry policy each one carries.

The kopf handlers turn them into kopf's own errors: ``InvalidSpec`` becomes a
``kopf.PermanentError`` (retrying cannot help: the user must change the spec), a ``Blocked``
reconcile (a missing Secret, a Redis not ready yet) a ``kopf.TemporaryError`` with ``delay``.
Messages read ``failed to <verb> <object>: <cause>`` where there is an object to name.
"""

from __future__ import annotations


class OperatorError(Exception):
    """Base class of the operator's errors."""


class ConfigurationError(OperatorError):
    """The operator's own settings (environment, flags) are wrong; it does not start."""


class InvalidSpec(OperatorError):
    """The RealtimeApp's spec passed the schema but cannot be honoured as written.

    ``field`` is the path of the offending field (``spec.worker.autoscaling``), for the status
    condition's message.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ApiError(OperatorError):
    """The Kubernetes API answered a request with an error status."""

    def __init__(self, status: int, reason: str, message: str, *, what: str = "") -> None:
        prefix = f"failed to {what}: " if what else ""
        super().__init__(f"{prefix}{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def invalid(self) -> bool:
        return self.status == 422


class Blocked(OperatorError):
    """The reconcile did what it could but waits on something outside the operator.

    Raised after the status was written, so the handler only has to schedule a retry in
    ``delay`` seconds (a missing Secret, an unknown image pull secret, Redis not ready yet).
    """

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class LeadershipLost(OperatorError):
    """This replica could not renew its Lease in time and must stop acting."""


class QueueStatsUnavailable(OperatorError):
    """The channel layer's queue statistics could not be read (Redis down, wrong password...)."""


class ClusterFormationError(OperatorError):
    """The Redis Cluster could not be formed or changed (yet)."""
