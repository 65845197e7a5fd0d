"""Two operator replicas: one holds the Lease and acts, the other waits; when the leader dies,
the other takes over."""

from __future__ import annotations

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually


def test_only_the_leader_acts_and_the_standby_takes_over(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    one = operators("one")
    two = operators("two")
    roles = {one.role(), two.role()}
    assert roles == {"leader", "standby"}, roles
    leader, standby = (one, two) if one.role() == "leader" else (two, one)
    lease = kube.get("coordination.k8s.io/v1", "Lease", namespace, "channelworks-operator")
    assert lease is not None and lease["spec"]["holderIdentity"] == leader.identity

    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    apps.wait_condition(kube, namespace, "Ready", "True")
    assert leader.reconciles() > 0
    assert standby.reconciles() == 0
    assert standby.metric("channelworks_operator_leader") == 0
    assert leader.metric("channelworks_operator_leader") == 1

    leader.kill()
    eventually(lambda: standby.role() == "leader", timeout=30, interval=0.2)
    changed = apps.manifest(namespace, **apps.external(redis_url), interface={"replicas": 3})
    apps.apply(kube, changed)

    def scaled() -> None:
        interface = kube.get("apps/v1", "Deployment", namespace, "chat-interface")
        assert interface is not None and interface["spec"]["replicas"] == 3

    eventually(scaled, timeout=apps.WAIT, interval=0.5)
    assert standby.reconciles() > 0
    lease = kube.get("coordination.k8s.io/v1", "Lease", namespace, "channelworks-operator")
    assert lease is not None and lease["spec"]["holderIdentity"] == standby.identity
    assert lease["spec"]["leaseTransitions"] >= 1
