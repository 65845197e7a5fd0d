"""Channelworks operator: turns RealtimeApp resources into running, autoscaled applications.

Layers (enforced by operator/.importlinter): ``main`` starts everything; ``handlers`` binds kopf
to ``reconcile``; ``reconcile`` reads the world through ``kube`` and ``queue_metrics``, builds the
wanted objects with the pure ``builders``, decides worker replicas with the pure ``autoscaler``
and writes ``status`` as conditions.
"""

from importlib import metadata

try:
    __version__ = metadata.version("channelworks-operator")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
