"""RFC 3339 times in UTC, as the Kubernetes API writes them."""

from __future__ import annotations

import datetime


def now() -> str:
    """Seconds precision: condition and event times."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """Microseconds precision: a Lease's ``MicroTime`` fields."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
