"""The operator's settings: read once, in ``main()``, from the environment and flags.

Every setting is an environment variable ``CHANNELWORKS_OPERATOR_*`` (what the Helm chart sets);
a flag of the same name overrides it (``--metrics-port`` for
``CHANNELWORKS_OPERATOR_METRICS_PORT``).
docs/operator.md lists them all.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import channelworks.exceptions
from channelworks import realtimeapp
from channelworks.process import env as readers
from channelworks_operator import __version__
from channelworks_operator.exceptions import ConfigurationError

ENV_PREFIX = "CHANNELWORKS_OPERATOR_"
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_OPERATOR_POD_LABELS = (
    (realtimeapp.NAME_LABEL, realtimeapp.NAME),
    (realtimeapp.COMPONENT_LABEL, "operator"),
)


@dataclass(frozen=True)
class OperatorConfig:
    """Everything the operator needs to know; see docs/operator.md for each field."""

    # What to watch: no namespaces means every namespace (a cluster-wide operator).
    namespaces: tuple[str, ...] = ()
    # Endpoints: /metrics on metrics_port, /healthz and /readyz on health_port.
    bind_address: str = "0.0.0.0"
    metrics_port: int = 8080
    health_port: int = 8081
    # Leader election with a coordination.k8s.io Lease: one replica acts, the others wait.
    leader_election: bool = True
    leader_election_name: str = "channelworks-operator"
    leader_election_namespace: str = "default"
    identity: str = field(default_factory=socket.gethostname)
    # This replica's Pod (POD_NAME, POD_UID from the downward API): the Lease's owner, so the
    # Lease goes with the last holder's Pod. Empty outside a pod.
    pod_name: str = ""
    pod_uid: str = ""
    lease_duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0
    # Reconciling.
    resync_seconds: float = 60.0
    retry_delay_seconds: float = 30.0
    max_concurrent_reconciles: int = 4
    stats_timeout_seconds: float = 5.0
    # What the operator makes.
    interface_image: str = f"channelworks/interface:{__version__}"
    redis_image: str = "redis:7.4"
    operator_namespace: str = "default"
    operator_pod_labels: tuple[tuple[str, str], ...] = DEFAULT_OPERATOR_POD_LABELS
    # Connecting to the API server: None means in-cluster, else $KUBECONFIG / ~/.kube/config.
    kubeconfig: str | None = None
    # Logs.
    log_level: str = "INFO"
    log_format: str = "json"

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def _namespaces(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get(ENV_PREFIX + "NAMESPACES", "")
    names = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    return () if names == ("*",) else names


def _labels(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    raw = env.get(ENV_PREFIX + "POD_LABELS", "").strip()
    if not raw:
        return DEFAULT_OPERATOR_POD_LABELS
    labels: list[tuple[str, str]] = []
    for item in raw.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not key:
            raise ConfigurationError(
                f"{ENV_PREFIX}POD_LABELS must be key=value pairs separated by commas, got {raw!r}"
            )
        labels.append((key, value))
    return tuple(labels)


_FLAGS: tuple[tuple[str, str, type], ...] = (
    ("--namespaces", "NAMESPACES", str),
    ("--bind-address", "BIND_ADDRESS", str),
    ("--metrics-port", "METRICS_PORT", int),
    ("--health-port", "HEALTH_PORT", int),
    ("--leader-election", "LEADER_ELECTION", str),
    ("--leader-election-name", "LEADER_ELECTION_NAME", str),
    ("--leader-election-namespace", "LEADER_ELECTION_NAMESPACE", str),
    ("--identity", "IDENTITY", str),
    ("--resync-seconds", "RESYNC_SECONDS", float),
    ("--retry-delay-seconds", "RETRY_DELAY_SECONDS", float),
    ("--max-concurrent-reconciles", "MAX_CONCURRENT_RECONCILES", int),
    ("--interface-image", "INTERFACE_IMAGE", str),
    ("--redis-image", "REDIS_IMAGE", str),
    ("--kubeconfig", "KUBECONFIG", str),
    ("--log-level", "LOG_LEVEL", str),
    ("--log-format", "LOG_FORMAT", str),
)


def _parse_flags(argv: Sequence[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(
        prog="channelworks-operator",
        description="Channelworks operator: reconciles RealtimeApp resources. Every flag has an "
        f"environment variable {ENV_PREFIX}<NAME> (see docs/operator.md).",
    )
    for flag, name, kind in _FLAGS:
        parser.add_argument(flag, type=kind, help=f"{ENV_PREFIX}{name}")
    parsed = vars(parser.parse_args(list(argv)))
    overrides: dict[str, str] = {}
    for flag, name, _ in _FLAGS:
        value = parsed[flag[2:].replace("-", "_")]
        if value is not None:
            overrides[ENV_PREFIX + name] = str(value)
    return overrides


def load(env: Mapping[str, str], argv: Sequence[str] = ()) -> OperatorConfig:
    """Build the configuration from ``env`` and ``argv``; raise ConfigurationError on bad values."""
    try:
        return _read({**env, **_parse_flags(argv)})
    except channelworks.exceptions.ConfigurationError as error:
        raise ConfigurationError(str(error)) from None


def _read(env: Mapping[str, str]) -> OperatorConfig:
    pod_namespace = env.get("POD_NAMESPACE", "").strip() or "default"
    identity = env.get("POD_NAME", "").strip() or f"{socket.gethostname()}-{os.getpid()}"
    lease = readers.number(env, ENV_PREFIX + "LEASE_DURATION_SECONDS", 15.0, 2.0)
    renew = readers.number(
        env, ENV_PREFIX + "RENEW_DEADLINE_SECONDS", min(10.0, lease * 2 / 3), 1.0
    )
    retry = readers.number(env, ENV_PREFIX + "RETRY_PERIOD_SECONDS", min(2.0, renew / 2), 0.1)
    if not retry < renew < lease:
        raise ConfigurationError(
            f"leader election needs RETRY_PERIOD_SECONDS ({retry:g}) < RENEW_DEADLINE_SECONDS "
            f"({renew:g}) < LEASE_DURATION_SECONDS ({lease:g})"
        )
    kubeconfig = env.get(ENV_PREFIX + "KUBECONFIG", "").strip() or env.get("KUBECONFIG", "")
    return OperatorConfig(
        namespaces=_namespaces(env),
        bind_address=readers.text(env, ENV_PREFIX + "BIND_ADDRESS", "0.0.0.0"),
        metrics_port=readers.port(env, ENV_PREFIX + "METRICS_PORT", 8080),
        health_port=readers.port(env, ENV_PREFIX + "HEALTH_PORT", 8081),
        leader_election=readers.flag(env, ENV_PREFIX + "LEADER_ELECTION", True),
        leader_election_name=readers.text(
            env, ENV_PREFIX + "LEADER_ELECTION_NAME", "channelworks-operator"
        ),
        leader_election_namespace=readers.text(
            env, ENV_PREFIX + "LEADER_ELECTION_NAMESPACE", pod_namespace
        ),
        identity=readers.text(env, ENV_PREFIX + "IDENTITY", identity),
        pod_name=env.get("POD_NAME", "").strip(),
        pod_uid=env.get("POD_UID", "").strip(),
        lease_duration_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
        resync_seconds=readers.number(env, ENV_PREFIX + "RESYNC_SECONDS", 60.0, 1.0),
        retry_delay_seconds=readers.number(env, ENV_PREFIX + "RETRY_DELAY_SECONDS", 30.0, 1.0),
        max_concurrent_reconciles=readers.integer(
            env, ENV_PREFIX + "MAX_CONCURRENT_RECONCILES", 4, 1, 64
        ),
        stats_timeout_seconds=readers.number(env, ENV_PREFIX + "STATS_TIMEOUT_SECONDS", 5.0, 0.1),
        interface_image=readers.text(
            env, ENV_PREFIX + "INTERFACE_IMAGE", f"channelworks/interface:{__version__}"
        ),
        redis_image=readers.text(env, ENV_PREFIX + "REDIS_IMAGE", "redis:7.4"),
        operator_namespace=pod_namespace,
        operator_pod_labels=_labels(env),
        kubeconfig=kubeconfig.strip() or None,
        log_level=readers.choice(env, ENV_PREFIX + "LOG_LEVEL", "info", LOG_LEVELS).upper(),
        log_format=readers.choice(env, ENV_PREFIX + "LOG_FORMAT", "json", LOG_FORMATS),
    )
