"""The operator run as a local process exactly as the Deployment helm installed would run it.

The control plane's kwok nodes only pretend to run pods, so the chart's operator Deployment
never really starts. This runs its container instead, on this machine: the same arguments and
environment (``fieldRef`` variables resolved as the kubelet would), the token of the chart's
ServiceAccount (so the chart's RBAC is what the operator is allowed), and, added last so they
win, only what a local process needs: free ports on 127.0.0.1 for metrics and health.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.operator.operator_process import free_port
from tests.support import control_plane
from tests.support.eventually import eventually

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def container_environment(
    container: Mapping[str, Any], pod_name: str, namespace: str
) -> dict[str, str]:
    """The container's ``env`` as the kubelet sets it; only the fieldRefs the chart uses."""
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace}
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


class ChartOperator:
    """``python -m channelworks_operator`` with the installed Deployment's args and env."""

    def __init__(
        self,
        deployment: Mapping[str, Any],
        *,
        kubeconfig: Path,
        log_path: Path,
        pod_name: str = "operator-local-0",
    ) -> None:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = [c for c in pod["containers"] if c["name"] == "operator"]
        namespace = deployment["metadata"]["namespace"]
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
            **container_environment(container, pod_name, namespace),
            "KUBECONFIG": str(kubeconfig),
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChartOperator:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        eventually(self._leading, timeout=START_TIMEOUT, interval=0.2, message="operator leads")
        return self

    def _leading(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"the operator exited ({self._process.returncode}):\n{self.log()}")
        return (self.get("/readyz", self.health_port) or "").strip() == "leader"

    def get(self, path: str, port: int) -> str | None:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as response:
                body: bytes = response.read()
                return body.decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def stop(self) -> int | None:
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(STOP_TIMEOUT)
        return self._process.returncode

    def log(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
