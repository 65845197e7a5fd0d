"""The tools the end-to-end tests drive a real cluster with: kubectl, helm, a container engine.

Everything is a subprocess against the kubeconfig in ``CHANNELWORKS_E2E_KUBECONFIG``, as a user
would type it. A command that fails raises ``CommandFailed`` with its command line and output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "channelworks"
CHAT_APP = ROOT / "examples" / "chat" / "k8s" / "realtimeapp.yaml"
RELEASE = "channelworks-e2e"
COMMAND_TIMEOUT = 600.0
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class Images:
    """Image name -> the reference the cluster runs it by."""

    refs: dict[str, str]

    def repository(self, image: str) -> str:
        return self.refs[image].rsplit(":", 1)[0]

    def tag(self, image: str) -> str:
        return self.refs[image].rsplit(":", 1)[1]


@dataclass(frozen=True)
class Release:
    """The chart installed by the suite."""

    namespace: str
    notes: str


@dataclass(frozen=True)
class App:
    """The chat RealtimeApp applied by the suite, and the manifest it was applied from."""

    namespace: str
    name: str
    manifest: dict[str, Any]


class CommandFailed(AssertionError):
    """A kubectl, helm, docker or kind command exited with an error."""


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

    def names(self, kind: str, namespace: str | None, selector: str) -> list[str]:
        where = ["-n", namespace] if namespace else []
        listed = self.kubectl("get", kind, *where, "-l", selector, "-o", "name").stdout
        return listed.split()

    @contextmanager
    def port_forward(
        self, target: str, namespace: str, port: int, timeout: float = 60.0
    ) -> Iterator[int]:
        """``kubectl port-forward TARGET :PORT``; yields the local port on 127.0.0.1."""
        command = [
            self.kubectl_path, "port-forward", "--address", "127.0.0.1", "-n", namespace,
            target, f":{port}",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **self.env},
        )  # fmt: skip
        try:
            yield _forwarded_port(process, timeout)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _forwarded_port(process: subprocess.Popen[str], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        found = _FORWARDING.search(line)
        if found:
            return int(found.group(1))
    raise CommandFailed(f"kubectl port-forward did not start: {''.join(seen)[-2000:]}")
