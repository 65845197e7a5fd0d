"""An operator that restarts finds everything as it left it: no child is rewritten (every
resourceVersion stays), the generated Redis password and Django SECRET_KEY are kept, and the
migration is not run again."""

from __future__ import annotations

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually


def versions(kube: Kube, namespace: str) -> dict[str, str]:
    return {
        key: child["metadata"]["resourceVersion"]
        for key, child in apps.children(kube, namespace).items()
    }


def test_restarted_operator_rewrites_nothing(
    kube: Kube, namespace: str, operators: OperatorFactory
) -> None:
    first = operators("first")
    # Mode cluster with volumes: the most children, and a StatefulSet with volume claim
    # templates (which the API server refuses to change: re-applying them must be a no-op).
    layer = {"redis": {"shards": 3, "replicasPerShard": 1, "storage": {"size": "1Gi"}}}
    apps.apply(kube, apps.manifest(namespace, channelLayer=layer))
    apps.wait_condition(kube, namespace, "InterfaceAvailable", "True")
    apps.wait_condition(kube, namespace, "WorkersAvailable", "True")

    def settled() -> dict[str, str]:
        before = versions(kube, namespace)
        assert len(before) == 12, sorted(before)  # with the Secret chat-secret-key
        first.wait_full_passes()  # every child was applied again
        assert versions(kube, namespace) == before
        return before

    before = eventually(settled, timeout=apps.WAIT, interval=0.1)
    secret = kube.get("v1", "Secret", namespace, "chat-redis")
    assert first.stop() == 0

    second = operators("second")
    eventually(lambda: second.reconciles() >= 3, timeout=apps.WAIT, interval=0.5)
    second.wait_full_passes()
    assert (
        second.metric(
            "channelworks_operator_objects_applied_total",
            {"kind": "Deployment", "outcome": "synced"},
        )
        == 2
    )
    assert versions(kube, namespace) == before
    assert kube.get("v1", "Secret", namespace, "chat-redis") == secret
    selector = "app.kubernetes.io/instance=chat,app.kubernetes.io/component=migrate"
    assert len(kube.list("batch/v1", "Job", namespace, selector)) == 1  # not migrated again
    app = apps.get(kube, namespace)
    assert apps.condition(app, "Ready")["reason"] != "ApplyRejected", app["status"]
    assert (
        second.metric(
            "channelworks_operator_objects_applied_total",
            {"kind": "StatefulSet", "outcome": "rejected"},
        )
        is None
    )
