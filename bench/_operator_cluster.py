"""The real control plane, the CRD, a namespace with RealtimeApps, and the operator as a process,
for ``bench/operator_bench.py``.

Reuses the test suite's parts: ``tests/support/control_plane.py`` (etcd, kube-apiserver,
controller-manager, scheduler, kwok on free 127.0.0.1 ports), ``tests/operator/crd.py`` (the CRD
file of the Helm chart) and ``tests/operator/operator_process.py`` (``python -m
channelworks_operator`` with its own metrics and health ports). The operator runs with its
production timings (resync 60 s, retry 30 s, Lease 15 s), not the tests' short ones.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import kubernetes  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from channelworks_operator import builders, spec  # noqa: E402
from channelworks_operator.kube import Kube, object_path  # noqa: E402
from tests.operator import crd  # noqa: E402
from tests.operator.operator_process import OperatorProcess  # noqa: E402
from tests.support.control_plane import (  # noqa: E402
    ControlPlane,
    ControlPlaneError,
    kube_binaries,
)
from tests.support.eventually import eventually  # noqa: E402

__all__ = [
    "ControlPlane",
    "ControlPlaneError",
    "Memory",
    "OperatorUnderTest",
    "expected_children",
    "install_crd",
    "kube_binaries",
    "make_namespace",
    "make_password_secret",
]

FIELD_MANAGER = "channelworks-bench"
# The operator's own defaults (config.py), written out so the tests' short timings are replaced.
PRODUCTION_TIMINGS = {
    "CHANNELWORKS_OPERATOR_RESYNC_SECONDS": "60",
    "CHANNELWORKS_OPERATOR_RETRY_DELAY_SECONDS": "30",
    "CHANNELWORKS_OPERATOR_LEASE_DURATION_SECONDS": "15",
    "CHANNELWORKS_OPERATOR_RENEW_DEADLINE_SECONDS": "10",
    "CHANNELWORKS_OPERATOR_RETRY_PERIOD_SECONDS": "2",
    "CHANNELWORKS_OPERATOR_STATS_TIMEOUT_SECONDS": "5",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def install_crd(kube: Kube) -> None:
    """Apply the chart's CRD as it is and wait until it is Established."""
    crd.install(kube, FIELD_MANAGER)


def make_password_secret(kube: Kube, namespace: str, name: str, password: str) -> None:
    """The Secret (key ``password``) that the apps' ``passwordSecretRef`` names."""
    kube.request(
        "POST",
        object_path("v1", "Secret", namespace),
        body={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {"password": password},
        },
    )


def make_namespace(api: kubernetes.client.ApiClient, name: str) -> None:
    """A namespace whose ``default`` ServiceAccount exists (so pods can be made at once)."""
    core = kubernetes.client.CoreV1Api(api)
    meta = kubernetes.client.V1ObjectMeta(name=name)
    core.create_namespace(kubernetes.client.V1Namespace(metadata=meta))
    eventually(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        interval=0.1,
        message=f"service account default in {name}",
        retry_on=(kubernetes.client.ApiException,),
    )


def app_manifest(namespace: str, name: str, url: str, secret: str) -> dict[str, Any]:
    """A RealtimeApp on an external Redis (URL + password Secret): no Redis pods to form."""
    return {
        "apiVersion": spec.API_VERSION,
        "kind": spec.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": "registry.example/chat-worker:1.4",
            "django": {"settingsModule": "chat.settings"},
            "channelLayer": {
                "redis": {
                    "mode": "external",
                    "url": url,
                    "passwordSecretRef": {"name": secret, "key": "password"},
                }
            },
        },
    }


def expected_children(manifest: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(apiVersion, kind, name)`` of every child the operator's builders make for this app on
    an API server without KEDA or the Prometheus Operator (as the test control plane is)."""
    body = {**manifest, "metadata": {**manifest["metadata"], "uid": str(uuid.uuid4())}}
    context = builders.BuildContext(
        interface_image="channelworks/interface",
        redis_image="redis",
        operator_namespace=manifest["metadata"]["namespace"],
        operator_pod_labels=(),
        worker_replicas=1,
    )
    return [
        (child["apiVersion"], child["kind"], child["metadata"]["name"])
        for child in builders.desired(spec.parse(body), context)
    ]


@dataclass(frozen=True)
class Memory:
    """From /proc/<pid>/status, in KiB: resident set now and its peak (high-water mark)."""

    rss_kib: int
    peak_kib: int


class OperatorUnderTest(OperatorProcess):
    """The test suite's operator process, with production timings, its pid, /proc and metrics."""

    def __init__(self, *, kubeconfig: Path, namespace: str, identity: str, log_dir: Path) -> None:
        super().__init__(
            kubeconfig=kubeconfig,
            namespace=namespace,
            identity=identity,
            log_dir=log_dir,
            env=dict(PRODUCTION_TIMINGS),
        )

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"operator {self.identity} is not started")
        return self._process.pid

    def memory(self) -> Memory:
        fields: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0])
        return Memory(fields["VmRSS"], fields["VmHWM"])

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def metric_sum(self, name: str, **labels: str) -> float | None:
        """The sum of every sample ``name`` with these labels (None: /metrics did not answer)."""
        text = self.get("/metrics", self.metrics_port)
        if text is None:
            return None
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += float(sample.value)
        return total

    def wait_leader(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.role() != "leader":
            if not self.running:
                raise RuntimeError(f"operator {self.identity} exited:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"operator {self.identity} not leader after {timeout:.0f}s")
            time.sleep(0.05)
