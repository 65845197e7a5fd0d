"""Interface autoscaling on the real API server and a real Redis: the interface pods report their
open WebSockets into the channel layer (as channelworks_interface.load_report does), the operator
reads the sum and the interface Deployment's replicas follow it out at once, and back in only
after the stabilization window; status.interfaceAutoscaler, the Autoscaling condition and Events
say why."""

from __future__ import annotations

import asyncio
import time

from channelworks.layers import RedisChannelLayer
from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually

TARGET = 10  # connections per interface pod
WINDOW = 8  # scaleDownStabilizationSeconds


def interface_replicas(kube: Kube, namespace: str) -> int:
    found = kube.get("apps/v1", "Deployment", namespace, "chat-interface")
    assert found is not None
    replicas: int = found["spec"]["replicas"]
    return replicas


def interface_events(kube: Kube, namespace: str, reason: str) -> list[str]:
    """Messages of the app's Events of ``reason`` about the interfaces."""
    messages = [str(event.get("message")) for event in apps.events(kube, namespace, reason)]
    return [message for message in messages if message.startswith("interfaces: ")]


def report(url: str, prefix: str, counts: dict[str, int]) -> None:
    """What each interface pod writes every 5 s (here with a report that outlives the test)."""

    async def write() -> None:
        layer = RedisChannelLayer(hosts=[url], prefix=prefix)
        try:
            for pod, count in counts.items():
                await layer.report_load(pod, count, 120)
        finally:
            await layer.close()

    asyncio.run(write())


def test_interface_pods_follow_the_open_connections(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    scaling = {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": 5,
        "targetConnectionsPerPod": TARGET,
        "pollIntervalSeconds": 2,
        "scaleDownStabilizationSeconds": WINDOW,
    }
    apps.apply(
        kube,
        apps.manifest(
            namespace,
            **apps.external(
                redis_url,
                interface={"replicas": 3, "autoscaling": scaling},
                worker={"autoscaling": {"enabled": False}},
            ),
        ),
    )
    apps.wait_condition(kube, namespace, "Ready", "True")
    # No connection reported: the minimum, whatever spec.interface.replicas says.
    eventually(lambda: interface_replicas(kube, namespace) == 1, timeout=30, interval=0.5)
    prefix = f"{namespace}.chat"

    report(redis_url, prefix, {"chat-interface-a": 20, "chat-interface-b": 15})
    eventually(lambda: interface_replicas(kube, namespace) == 4, timeout=30, interval=0.5)
    app = apps.wait_condition(kube, namespace, "Autoscaling", "True", reason="ScaledUp")
    assert app["status"]["interfaceAutoscaler"]["connections"] == 35
    assert app["status"]["interfaceAutoscaler"]["desiredReplicas"] == 4
    assert "35 open connections" in apps.condition(app, "Autoscaling")["message"]
    eventually(lambda: interface_events(kube, namespace, "ScaledUp"), timeout=10)
    eventually(
        lambda: apps.get(kube, namespace)["status"]["interface"]["ready"] == "4/4",
        timeout=apps.WAIT,
        interval=0.5,
    )

    report(redis_url, prefix, {"chat-interface-a": 90})  # one pod got busier: 105 -> max 5
    eventually(lambda: interface_replicas(kube, namespace) == 5, timeout=30, interval=0.5)

    report(redis_url, prefix, {"chat-interface-a": 3, "chat-interface-b": 2})
    dropped = time.monotonic()
    app = apps.wait_condition(kube, namespace, "Autoscaling", "True", reason="Stabilizing")
    assert interface_replicas(kube, namespace) == 5
    assert app["status"]["interfaceAutoscaler"]["connections"] == 5
    eventually(lambda: interface_replicas(kube, namespace) == 1, timeout=40, interval=0.5)
    assert time.monotonic() - dropped >= WINDOW - 2, "scaled in before the window"
    apps.wait_condition(kube, namespace, "Autoscaling", "True", reason="ScaledDown")
    eventually(lambda: interface_events(kube, namespace, "ScaledDown"), timeout=10)
