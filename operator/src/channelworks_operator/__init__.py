"""Channelworks operator: turns RealtimeApp resources into running, autoscaled applications.

Layers (enforced by .importlinter): ``main`` starts everything; ``handlers`` binds kopf's
watches to ``resync``, the one scheduler; ``reconcile`` runs one app's observe (``observing``:
reads through the ``kube.Api`` adapter and ``queue_metrics``) -> decide (``deciding``, pure:
``scaling``, ``autoscaler``, the ``builders``, ``release``) -> apply (``applying``) -> report
(``reporting``: ``status`` as conditions, Events, metrics).
"""

from importlib import metadata

try:
    __version__ = metadata.version("channelworks-operator")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
