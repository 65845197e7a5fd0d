"""``kubectl get rtapp -o wide`` on the real API server and operator: the columns are the ones the
docs name, and an interface pod that is being deleted (still draining its sockets) shows in
DRAINING and in ``status.interface.drainingReason``."""

from __future__ import annotations

from typing import Any

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.control_plane import ControlPlane
from tests.support.eventually import eventually
from tests.support.kubectl_tables import printed_columns

HOLD = "channelworks.dev/test-hold"  # keeps the deleted pod around, as a long drain would
COLUMNS = [
    "NAME", "READY", "INTERFACE", "WORKERS", "QUEUE", "AGE",
    "PHASE", "MIGRATION", "LAYER", "ENDPOINT", "DRAINING",
]  # fmt: skip


def interface_pod(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "finalizers": [HOLD],
            "labels": {
                "app.kubernetes.io/name": "channelworks",
                "app.kubernetes.io/instance": "chat",
                "app.kubernetes.io/component": "interface",
            },
        },
        # Never scheduled: the fake node's kubelet (kwok) would end a deleted pod at once.
        "spec": {
            "containers": [{"name": "interface", "image": "interface:test"}],
            "nodeSelector": {"channelworks.dev/no-such-node": "true"},
        },
    }


def wide(control_plane: ControlPlane, namespace: str) -> dict[str, str]:
    out = control_plane.kubectl("get", "rtapp", "-n", namespace, "-o", "wide").stdout
    return printed_columns(out)


def test_wide_columns_show_the_interface_pods_that_drain(
    kube: Kube,
    namespace: str,
    operators: OperatorFactory,
    redis_url: str,
    control_plane: ControlPlane,
) -> None:
    operators()
    scaling = {"enabled": True, "minReplicas": 1, "maxReplicas": 3, "pollIntervalSeconds": 2}
    fields = apps.external(redis_url, interface={"autoscaling": scaling})
    apps.apply(kube, apps.manifest(namespace, **fields))
    apps.wait_condition(kube, namespace, "Ready", "True")

    def no_drain_shown() -> None:
        columns = wide(control_plane, namespace)
        assert list(columns) == COLUMNS
        assert columns["DRAINING"] == "0", columns

    eventually(no_drain_shown, timeout=apps.WAIT)

    kube.create(interface_pod(namespace, "chat-interface-old"))
    kube.delete("v1", "Pod", namespace, "chat-interface-old")
    try:

        def drain_shown() -> None:
            columns = wide(control_plane, namespace)
            assert list(columns) == COLUMNS
            assert columns["DRAINING"] == "1", columns
            reason = apps.get(kube, namespace)["status"]["interface"]["drainingReason"]
            assert reason.startswith("1 interface pods draining (chat-interface-old): "), reason

        eventually(drain_shown, timeout=apps.WAIT, interval=0.5)
    finally:
        kube.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/chat-interface-old",
            body={"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
        )
    eventually(no_drain_shown, timeout=apps.WAIT)
