"""The operator's least-privilege RBAC, as data: exact resources and verbs, nothing else.

``operator/rbac.yaml`` is rendered from here (``python -m channelworks_operator.rbac``) and a test
keeps the two equal; the Helm chart copies the rules. Why each rule is there:

- realtimeapps: read and watched (kopf only watches; nothing writes the object itself);
  ``/status`` written by server-side apply; ``/finalizers`` updated so owner references may block
  deletion (the OwnerReferencesPermissionEnforcement admission plugin asks for it).
- Deployments, StatefulSets: made by server-side apply (``create`` + ``patch``), watched so that
  readiness reaches the status quickly.
- Deployments: also deleted, the worker Deployment of a pool that ``spec.workerPools`` no
  longer has (or ``<app>-worker`` once pools are given).
- Services, ConfigMaps, Secrets, PDBs, NetworkPolicies, HPAs, ScaledObjects, Pod/ServiceMonitors:
  made by apply; ``delete`` only for kinds that come and go with the spec. Secrets are also read
  to check the ones the spec names and to read the Redis password.
- Pods: listed to find the Redis pods' addresses when forming the cluster, and a migration
  Job's pod; ``pods/log`` read for the last lines of a failed migration.
- Ingresses: listed for the hosts that route to an app (its workers' ``DJANGO_ALLOWED_HOSTS``).
- Jobs: the migration Jobs (``spec.django.migrate``), created once each (never patched: a Job's
  template cannot change), listed and watched so a finished one rolls the app at once; the TTL
  controller and owner references delete them.
- Events: posted about the apps (and by kopf about its handlers).
- Leases: leader election, only in the operator's own namespace (a Role).
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from channelworks import realtimeapp
from channelworks_operator import spec

NAME = "channelworks-operator"
LEADER_ELECTION_ROLE = "channelworks-operator-leader-election"

APPLY = ["get", "create", "patch"]
APPLY_DELETE = ["get", "create", "patch", "delete"]


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def cluster_rules() -> list[dict[str, Any]]:
    """Rules over the watched namespaces (a ClusterRole, or a Role per namespace)."""
    return [
        _rule(spec.GROUP, [spec.PLURAL], ["get", "list", "watch"]),
        _rule(spec.GROUP, [f"{spec.PLURAL}/status"], ["get", "patch"]),
        _rule(spec.GROUP, [f"{spec.PLURAL}/finalizers"], ["update"]),
        _rule("apps", ["deployments"], ["get", "list", "watch", "create", "patch", "delete"]),
        _rule("apps", ["statefulsets"], ["get", "list", "watch", "create", "patch"]),
        _rule("", ["services"], APPLY_DELETE),
        _rule("", ["configmaps"], APPLY),
        _rule("", ["secrets"], APPLY),
        _rule("", ["pods"], ["list"]),
        _rule("", ["pods/log"], ["get"]),
        _rule("batch", ["jobs"], ["get", "list", "watch", "create"]),
        _rule("", ["events"], ["create"]),
        _rule("policy", ["poddisruptionbudgets"], APPLY_DELETE),
        _rule("networking.k8s.io", ["networkpolicies"], APPLY_DELETE),
        _rule("networking.k8s.io", ["ingresses"], ["get", "list"]),
        _rule("autoscaling", ["horizontalpodautoscalers"], APPLY_DELETE),
        _rule("keda.sh", ["scaledobjects"], APPLY_DELETE),
        _rule("monitoring.coreos.com", ["podmonitors", "servicemonitors"], APPLY_DELETE),
    ]


def leader_election_rules() -> list[dict[str, Any]]:
    """Rules in the operator's own namespace."""
    return [_rule("coordination.k8s.io", ["leases"], ["get", "create", "update"])]


def manifests() -> list[dict[str, Any]]:
    labels = {realtimeapp.NAME_LABEL: realtimeapp.NAME, realtimeapp.COMPONENT_LABEL: "operator"}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": labels},
            "rules": cluster_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": LEADER_ELECTION_ROLE, "labels": labels},
            "rules": leader_election_rules(),
        },
    ]


HEADER = """\
# RBAC of the Channelworks operator, rendered by `python -m channelworks_operator.rbac`
# from operator/src/channelworks_operator/rbac.py (a test keeps this file equal to it).
# Bind the ClusterRole to the operator's ServiceAccount with a ClusterRoleBinding (all
# namespaces) or with a RoleBinding in each watched namespace (--namespaces); bind the Role in
# the operator's own namespace (leader election Lease).
"""


def render() -> str:
    return HEADER + yaml.safe_dump_all(manifests(), sort_keys=False, default_flow_style=False)


if __name__ == "__main__":
    sys.stdout.write(render())
