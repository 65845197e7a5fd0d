"""The NetworkPolicy that lets only the app's own pods (and the operator) reach its Redis."""

from __future__ import annotations

from typing import Any

from channelworks_operator import spec
from channelworks_operator.builders import meta
from channelworks_operator.builders.context import BuildContext

Manifest = meta.Manifest


def redis_policy(app: spec.App, ctx: BuildContext) -> Manifest:
    cluster = app.channel_layer.redis.mode == "cluster"
    redis_port = {"protocol": "TCP", "port": meta.REDIS_PORT}
    ingress: list[dict[str, Any]] = [
        {
            # Interface, worker and Redis pods of this app (Redis nodes replicate and gossip).
            "from": [{"podSelector": {"matchLabels": meta.selector_labels(app.ref)}}],
            "ports": [redis_port]
            + ([{"protocol": "TCP", "port": meta.REDIS_BUS_PORT}] if cluster else []),
        },
        {
            # The operator: it forms the cluster and reads queue statistics.
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": ctx.operator_namespace}
                    },
                    "podSelector": {"matchLabels": dict(ctx.operator_pod_labels)},
                }
            ],
            "ports": [redis_port],
        },
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta.metadata(app.ref, meta.redis_name(app.ref), meta.CHANNEL_LAYER),
        "spec": {
            "podSelector": {"matchLabels": meta.selector_labels(app.ref, meta.CHANNEL_LAYER)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }
