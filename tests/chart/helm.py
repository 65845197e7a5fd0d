"""Running the real helm binary on the chart, and reading what it renders.

helm is the one ``tools/kube/build-binaries.sh`` builds from its Go module
(``helm.sh/helm/v3/cmd/helm``) and caches; ``tests.support.control_plane.helm_binary`` finds it.
Every command passes ``--kube-version`` of the test control plane (a helm built with
``go install`` believes the cluster is Kubernetes 1.20 otherwise: the release build stamps the
version with ldflags).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support import control_plane

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "channelworks"
CRD_FILE = CHART / "crds" / "realtimeapps.channelworks.dev.yaml"
VALUES_DIR = Path(__file__).resolve().parent / "values"
RELEASE = "cw"
NAMESPACE = "channelworks-system"
TIMEOUT = 120.0

Manifest = dict[str, Any]


def kube_version() -> str:
    """``1.33.13``: the version of the test control plane, from its cache directory name."""
    return control_plane.bin_dirs().kube.parent.name.removeprefix("v")


def values_files() -> list[Path]:
    return sorted(VALUES_DIR.glob("*.yaml"))


class HelmError(AssertionError):
    """helm exited with an error; the message holds its command line and output."""


@dataclass(frozen=True)
class Helm:
    binary: Path
    kube_version: str = field(default_factory=kube_version)

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.binary), *args]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT,
            env=dict(env) if env is not None else None,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise HelmError(
                f"{' '.join(command)} exited with {done.returncode}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        return done

    def lint(self, values: Sequence[Path] = ()) -> subprocess.CompletedProcess[str]:
        return self.run(
            "lint", "--strict", "--kube-version", self.kube_version, str(CHART),
            *_values_args(values), check=False,
        )  # fmt: skip

    def template_text(
        self,
        values: Sequence[Path] = (),
        sets: Sequence[str] = (),
        *,
        release: str = RELEASE,
        namespace: str = NAMESPACE,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        set_args = [arg for item in sets for arg in ("--set", item)]
        return self.run(
            "template", release, str(CHART), "--namespace", namespace,
            "--kube-version", self.kube_version, *_values_args(values), *set_args,
            check=check,
        )  # fmt: skip

    def template(
        self,
        values: Sequence[Path] = (),
        sets: Sequence[str] = (),
        *,
        release: str = RELEASE,
        namespace: str = NAMESPACE,
    ) -> list[Manifest]:
        """The rendered objects (the test hook pod included, the CRD in crds/ not)."""
        done = self.template_text(values, sets, release=release, namespace=namespace)
        return documents(done.stdout)


def _values_args(values: Sequence[Path]) -> list[str]:
    return [arg for path in values for arg in ("--values", str(path))]


def documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def one(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(manifests, kind, name)
    if len(found) != 1:
        kinds = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in manifests)
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(found)} in {kinds}")
    return found[0]


def operator_container(manifests: Sequence[Manifest]) -> Manifest:
    deployment = one(manifests, "Deployment")
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "operator")
