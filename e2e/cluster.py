"""The tools the end-to-end tests drive a real cluster with: kubectl and helm, as a user types them.

Everything is a subprocess against one kubeconfig. A command that fails raises ``CommandFailed``
with its command line and output. ``Cluster.problems`` says why pods are not running (image not
imported, crash loop...), for the message of a wait that timed out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "channelworks"
CHAT_K8S = ROOT / "examples" / "chat" / "k8s"
CHAT_APP = CHAT_K8S / "realtimeapp.yaml"
CHAT_DATABASE = CHAT_K8S / "postgres.yaml"
RELEASE = "channelworks-e2e"
COMMAND_TIMEOUT = 600.0
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Images:
    """The references the cluster runs each image by (already on the node, or pulled)."""

    operator: str
    interface: str
    chat: str
    redis: str
    postgres: str

    @staticmethod
    def repository(reference: str) -> str:
        return reference.rsplit(":", 1)[0]

    @staticmethod
    def tag(reference: str) -> str:
        return reference.rsplit(":", 1)[1]


@dataclass(frozen=True)
class Release:
    """The chart installed by the suite."""

    namespace: str
    name: str
    notes: str


@dataclass(frozen=True)
class App:
    """A RealtimeApp applied by the suite, and the manifest it was applied from."""

    namespace: str
    name: str
    manifest: dict[str, Any]


class CommandFailed(AssertionError):
    """A kubectl, helm or image command exited with an error."""


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, input=stdin,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if check and done.returncode != 0:
        raise CommandFailed(
            f"{' '.join(command)} exited with {done.returncode}\n"
            f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
        )
    return done


def tool(name: str, variable: str) -> str:
    """The path of a tool: ``$variable`` if set, else ``name`` on PATH."""
    found = os.environ.get(variable) or shutil.which(name)
    if not found:
        raise CommandFailed(f"{name} is needed: put it on PATH or set {variable}")
    return found


@dataclass(frozen=True)
class Cluster:
    """kubectl and helm against one kubeconfig."""

    kubeconfig: Path
    kubectl_path: str
    helm_path: str

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return run(
            [self.kubectl_path, *args], env=self.env, timeout=timeout, check=check, stdin=stdin
        )

    def helm(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        return run([self.helm_path, *args], env=self.env, timeout=timeout).stdout

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
        )
        return document

    def items(self, kind: str, namespace: str | None, selector: str = "") -> list[dict[str, Any]]:
        where = ["-n", namespace] if namespace else []
        chosen = ["-l", selector] if selector else []
        listed = self.kubectl("get", kind, *where, *chosen, "-o", "json").stdout
        found: list[dict[str, Any]] = json.loads(listed)["items"]
        return found

    def names(self, kind: str, namespace: str | None, selector: str) -> list[str]:
        where = ["-n", namespace] if namespace else []
        listed = self.kubectl("get", kind, *where, "-l", selector, "-o", "name").stdout
        return listed.split()

    def apply(self, namespace: str, documents: str) -> str:
        return self.kubectl("apply", "-n", namespace, "-f", "-", stdin=documents).stdout

    def problems(self, namespace: str) -> str:
        """Pods of ``namespace`` that are not running and ready, with the reasons Kubernetes
        gives (ImagePullBackOff, CrashLoopBackOff, Pending...), and the namespace's warnings."""
        lines = []
        for pod in self.items("pods", namespace):
            statuses = pod.get("status", {}).get("containerStatuses") or []
            if statuses and all(status.get("ready") for status in statuses):
                continue
            states = [_container_state(status) for status in statuses]
            phase = pod.get("status", {}).get("phase")
            lines.append(f"pod {pod['metadata']['name']} {phase}: {'; '.join(states)}")
        events = self.kubectl(
            "get", "events", "-n", namespace, "--field-selector", "type=Warning",
            "-o", "custom-columns=OBJ:.involvedObject.name,REASON:.reason,MESSAGE:.message",
            check=False,
        ).stdout  # fmt: skip
        return "\n".join([*lines, events[-3000:]])


def _container_state(status: dict[str, Any]) -> str:
    """``name: waiting ImagePullBackOff`` and the like."""
    state: dict[str, dict[str, Any]] = status.get("state") or {}
    kind, details = next(iter(state.items()), ("?", {}))
    return f"{status['name']}: {kind} {details.get('reason', '')}".strip()


def wait_until(
    what: str,
    check: Callable[[], tuple[bool, Any]],
    timeout: float,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``check`` until it passes; fail with its last observation (and ``explain()``, when
    given, e.g. ``Cluster.problems``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        passed, last = check()
        if passed:
            return last
        if time.monotonic() > deadline:
            extra = f"\n{explain()}" if explain is not None else ""
            raise AssertionError(f"{what}: not within {timeout:.0f}s; last seen: {last}{extra}")
        time.sleep(POLL_SECONDS)
