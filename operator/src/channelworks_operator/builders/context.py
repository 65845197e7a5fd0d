"""What the builders need besides the spec: the operator's settings and what reconcile found."""

from __future__ import annotations

from dataclasses import dataclass, field

from channelworks_operator import spec


@dataclass(frozen=True)
class BuildContext:
    """Inputs of one build. Everything here is already decided; builders only lay it out."""

    interface_image: str
    redis_image: str
    operator_namespace: str
    operator_pod_labels: tuple[tuple[str, str], ...]
    # Worker replicas to write; None leaves spec.replicas to an HPA/KEDA (no field written).
    worker_replicas: int | None
    # Redis pods to run instead of the spec's count (a shrinking cluster keeps its pods until
    # their slots have moved away); None: the spec's count.
    redis_replicas: int | None = None
    # The generated Redis password, when the operator owns the password Secret; never logged.
    redis_password: str | None = field(default=None, repr=False)
    # Prometheus Operator kinds the API server serves ("PodMonitor", "ServiceMonitor").
    monitor_kinds: frozenset[str] = frozenset()
    # Whether KEDA's ScaledObject kind is served.
    keda_available: bool = False
    # Hosts of the Ingresses that route to the interface Service (DJANGO_ALLOWED_HOSTS).
    ingress_hosts: tuple[str, ...] = ()
    # Replicas of each named worker pool (spec.workerPools), like worker_replicas.
    pool_replicas: tuple[tuple[str, int | None], ...] = ()
    # Interface replicas decided by the interface autoscaler; None: spec.interface.replicas.
    interface_replicas: int | None = None

    def pool_replicas_of(self, pool: str) -> int | None:
        return dict(self.pool_replicas).get(pool)


@dataclass(frozen=True)
class LayerConnection:
    """How the app's pods reach the channel layer (the CHANNELWORKS_REDIS_* variables)."""

    mode: str
    url: str
    password: spec.SecretKeyRef | None
