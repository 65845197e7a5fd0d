"""What an operator leaves behind when it stops: no Lease once its Pod is gone, no RealtimeApp
that still says ``Ready=True`` with nobody keeping it, and no leader that goes on acting after
its Lease may have lapsed because a renewal hangs."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorAccount, OperatorFactory
from tests.support.eventually import eventually
from tests.support.tcp_proxy import TcpProxy

LEASE = ("coordination.k8s.io/v1", "Lease")
RENEW_DEADLINE = 3.0  # CHANNELWORKS_OPERATOR_RENEW_DEADLINE_SECONDS in operator_process.py
RETRY_PERIOD = 0.5


def lease(kube: Kube, namespace: str) -> dict[str, object] | None:
    return kube.get(*LEASE, namespace, "channelworks-operator")


def test_the_lease_goes_with_the_pod_of_its_last_holder(
    kube: Kube, namespace: str, operators: OperatorFactory
) -> None:
    pod = kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "operator-pod", "namespace": namespace},
            "spec": {"containers": [{"name": "operator", "image": "channelworks/operator"}]},
        }
    )
    uid = pod["metadata"]["uid"]
    operator = operators("in-a-pod", env={"POD_NAME": "operator-pod", "POD_UID": uid})
    eventually(lambda: operator.role() == "leader", timeout=30, interval=0.2)
    found = lease(kube, namespace)
    assert found is not None
    owners = found["metadata"].get("ownerReferences")  # type: ignore[index]
    assert owners == [{"apiVersion": "v1", "kind": "Pod", "name": "operator-pod", "uid": uid}]

    operator.kill()  # as a node loss would: no release, the Lease stays held
    assert lease(kube, namespace) is not None
    kube.delete("v1", "Pod", namespace, "operator-pod")
    eventually(lambda: lease(kube, namespace) is None, timeout=60, interval=0.5)


def test_a_stopping_operator_marks_the_apps_it_no_longer_keeps(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    first = operators("first")
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    apps.wait_condition(kube, namespace, "Ready", "True")

    assert first.stop() == 0
    app = apps.get(kube, namespace)
    ready = apps.condition(app, "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "OperatorStopped"), app["status"]
    assert "first stopped" in ready["message"]
    assert app["status"]["phase"] == "Unknown"

    operators("second")
    apps.wait_condition(kube, namespace, "Ready", "True")
    assert apps.get(kube, namespace)["status"]["phase"] == "Ready"


def test_a_leader_whose_renewal_hangs_stops_acting_at_the_renew_deadline(
    namespace: str, operators: OperatorFactory, operator_account: OperatorAccount, tmp_path: Path
) -> None:
    config = yaml.safe_load(operator_account.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    with TcpProxy(host, int(port)) as proxy:
        config["clusters"][0]["cluster"]["server"] = f"https://{host}:{proxy.port}"
        proxied = tmp_path / "kubeconfig-through-proxy"
        proxied.write_text(yaml.safe_dump(config))
        leader = operators("hung", env={"KUBECONFIG": str(proxied)})
        eventually(lambda: leader.role() == "leader", timeout=30, interval=0.2)
        time.sleep(RETRY_PERIOD * 2)  # a renewal or two went through: the deadline starts anew

        proxy.freeze()  # the API server stops answering, connections stay open
        frozen_at = time.monotonic()
        eventually(
            lambda: "could not renew the Lease" in leader.log(200),
            timeout=RENEW_DEADLINE + 10,
            interval=0.1,
            message="the leader gave up its leadership",
        )
        waited = time.monotonic() - frozen_at
        # The deadline counts from the last renewal, at most one retry period before the freeze.
        assert waited <= RENEW_DEADLINE + 1.0, f"acted {waited:.1f}s after the API went silent"
        proxy.thaw()
