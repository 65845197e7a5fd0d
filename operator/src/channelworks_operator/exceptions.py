"""Every error of the operator, and the retry policy each one carries.

The resync loop (``resync.Resync``) is the one scheduler of reconciles, and these classes are
its retry API:

- a ``PermanentError`` (``InvalidSpec``): retrying cannot help, the user must change the app;
  the status says why, and the app is reconciled again only when it changes;
- a ``TemporaryError`` (``Blocked``: a missing Secret, an unknown pull secret, a child the API
  server refused): the run did what it could and wrote the status; it runs again after
  ``delay`` seconds;
- anything else (``ApiError``, a bug): logged, and retried after ``--retry-delay-seconds``.

Messages read ``failed to <verb> <object>: <cause>`` where there is an object to name.
"""

from __future__ import annotations


class OperatorError(Exception):
    """Base class of the operator's errors."""


class ConfigurationError(OperatorError):
    """The operator's own settings (environment, flags) are wrong; it does not start."""


class PermanentError(OperatorError):
    """A reconcile that cannot succeed until the app itself changes: no retry before that."""


class TemporaryError(OperatorError):
    """A reconcile that waits on something outside the operator: retry after ``delay`` s."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class InvalidSpec(PermanentError):
    """The RealtimeApp's spec passed the schema but cannot be honoured as written.

    ``field`` is the path of the offending field (``spec.worker.autoscaling``), for the status
    condition's message.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Blocked(TemporaryError):
    """The reconcile did what it could but waits on something outside the operator.

    Raised after the status was written, so the scheduler only has to run it again in
    ``delay`` seconds (a missing Secret, an unknown image pull secret, a refused child).
    """


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


class QueueStatsUnavailable(OperatorError):
    """The channel layer's queue statistics could not be read (Redis down, wrong password...)."""
