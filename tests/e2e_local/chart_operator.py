"""The operator run as a local process exactly as the Deployment helm installed would run it.

The control plane's kwok nodes only pretend to run pods, so the chart's operator Deployment
never really starts. This runs its container instead, on this machine: the same arguments and
environment (``fieldRef`` variables resolved as the kubelet would), the token of the chart's
ServiceAccount (so the chart's RBAC is what the operator is allowed), and, added last so they
win, only what a local process needs: free ports on 127.0.0.1 for metrics and health.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.operator.operator_process import HOST, OperatorProcess
from tests.support import control_plane
from tests.support.processes import free_port


def container_environment(
    container: Mapping[str, Any], pod_name: str, namespace: str
) -> dict[str, str]:
    """The container's ``env`` as the kubelet sets it; only the fieldRefs the chart uses. The
    process runs in no Pod, so its uid is empty (the Lease then has no owner to go with)."""
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace, "metadata.uid": ""}
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def service_account_kubeconfig(
    plane: control_plane.ControlPlane, namespace: str, account: str, directory: Path
) -> Path:
    """A kubeconfig that authenticates as ``namespace/account`` (a TokenRequest token)."""
    token = plane.kubectl("create", "token", account, "-n", namespace, "--duration=2h").stdout
    config = control_plane.kubeconfig(plane.server, plane.ca_file, token.strip())
    path = directory / f"kubeconfig-{account}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class ChartOperator(OperatorProcess):
    """``python -m channelworks_operator`` with the installed Deployment's args and env; ready
    once it leads."""

    def __init__(  # the base's settings come from the Deployment here, not from the tests
        self,
        deployment: Mapping[str, Any],
        *,
        kubeconfig: Path,
        log_path: Path,
        pod_name: str = "operator-local-0",
    ) -> None:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = [c for c in pod["containers"] if c["name"] == "operator"]
        self.identity = pod_name
        self.namespace = deployment["metadata"]["namespace"]
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.log_path = log_path
        self.command = [
            sys.executable,
            "-m",
            "channelworks_operator",
            *container.get("args", []),
            f"--metrics-port={self.metrics_port}",
            f"--health-port={self.health_port}",
            f"--bind-address={HOST}",
        ]
        self.env = {
            **os.environ,
            **container_environment(container, pod_name, self.namespace),
            "KUBECONFIG": str(kubeconfig),
        }
        self._process = None

    def _ready(self) -> bool:
        return super()._ready() and self.role() == "leader"
