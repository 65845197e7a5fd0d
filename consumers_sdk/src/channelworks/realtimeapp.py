"""The names of the ``RealtimeApp`` custom resource and the labels of what the operator makes.

Written once, here, and read by both sides: the operator, which serves the resource and labels
every object it makes for an app, and the ``channelworks`` command, which writes a RealtimeApp
(``manifest``) and reads an app and its pods (``status``). Dependencies point down: the operator
imports the SDK, never the other way. Pure constants: the operator's pure builders may import this
module and nothing else of the SDK (``.importlinter``). The CRD itself is
``charts/channelworks/crds/realtimeapps.channelworks.dev.yaml``.
"""

from __future__ import annotations

GROUP = "channelworks.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RealtimeApp"
PLURAL = "realtimeapps"

# The recommended app.kubernetes.io labels on every object the operator makes for an app:
# name=channelworks, instance=<app>, component=<one of the components below>, managed-by.
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAME = "channelworks"
MANAGED_BY = "channelworks-operator"

# The components (values of COMPONENT_LABEL) of an app.
INTERFACE = "interface"
WORKER = "worker"
CHANNEL_LAYER = "channel-layer"
