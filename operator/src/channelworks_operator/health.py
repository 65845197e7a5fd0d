"""The operator's probes: what its role is, and the two servers that say so.

Both are ``channelworks.process.probes.ProbeServer`` (the one probe server every process runs,
on the operator's event loop): ``/healthz`` and ``/readyz`` on the health port, ``/metrics`` on
the metrics port (which answers the probes too).

- ``/healthz``: 200 whenever it answers: the server runs on the event loop that runs kopf, the
  resync loop and leadership, so a stuck loop does not answer and the kubelet restarts the pod.
- ``/readyz``: 200 once the replica is either the leader with its handlers running or a standby
  waiting for the Lease; the body says which (``starting``, ``standby``, ``leader``,
  ``stopping``).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from channelworks.process import probes

STARTING = "starting"
STANDBY = "standby"
LEADER = "leader"
STOPPING = "stopping"


@dataclass
class HealthState:
    role: str = STARTING

    @property
    def ready(self) -> bool:
        return self.role in (STANDBY, LEADER)


def servers(
    state: HealthState,
    address: str,
    metrics_port: int,
    health_port: int,
    registry: CollectorRegistry,
) -> list[probes.ProbeServer]:
    """The metrics server and the health server (not started yet)."""

    def ready() -> bool:
        return state.ready

    def role() -> str:
        return state.role

    return [
        probes.ProbeServer(address, metrics_port, registry, ready=ready, state=role),
        probes.ProbeServer(address, health_port, None, ready=ready, state=role),
    ]
