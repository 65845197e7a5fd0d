"""``channelworks_build_info``: which build of which component a process runs, one shape for all.

Labels ``component`` (``interface``, ``worker``, ``operator``), ``version`` (the installed
distribution's, ``unknown`` from a source tree without an install) and ``python``.
"""

from __future__ import annotations

import platform
from importlib import metadata

from prometheus_client import CollectorRegistry, Gauge

UNKNOWN = "unknown"


def version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``unknown``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def build_info(registry: CollectorRegistry, component: str, distribution: str) -> Gauge:
    """Register ``channelworks_build_info{component,version,python} 1`` on ``registry``."""
    gauge = Gauge(
        "channelworks_build_info",
        "Build of the running Channelworks component (always 1).",
        ["component", "version", "python"],
        registry=registry,
    )
    gauge.labels(
        component=component, version=version(distribution), python=platform.python_version()
    ).set(1)
    return gauge
