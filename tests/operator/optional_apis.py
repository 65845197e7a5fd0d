"""The optional APIs the operator uses when the API server serves them (the Prometheus
Operator's monitors, KEDA's ScaledObject), installed and removed on the test control plane.

Their CRDs are the minimal stand-ins in ``optional_crds/`` (written for these tests). The
control plane is shared by a whole pytest process, so a test states what it needs at its start
(``Crds.install`` / ``Crds.remove``) and everything it installed is removed again afterwards.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from channelworks_operator.exceptions import ApiError
from channelworks_operator.kube import Kube
from tests.support.eventually import eventually

CRD_DIR = Path(__file__).resolve().with_name("optional_crds")
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
PROMETHEUS_OPERATOR = (
    "podmonitors.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
)
KEDA = ("scaledobjects.keda.sh",)
WAIT = 60.0


def manifest(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CRD_DIR / f"{name}.yaml").read_text())
    return document


def served_kinds(kube: Kube, api_version: str) -> set[str]:
    """The kinds discovery lists for ``api_version`` (empty when it is not served)."""
    try:
        _, listing = kube.request("GET", f"/apis/{api_version}")
    except ApiError as error:
        if error.status in (404, 503):  # the group is absent, or going away
            return set()
        raise
    return {str(item["kind"]) for item in listing.get("resources", [])}


def _api(document: dict[str, Any]) -> tuple[str, str]:
    spec = document["spec"]
    return f"{spec['group']}/{spec['versions'][0]['name']}", spec["names"]["kind"]


class Crds:
    """Installs and removes optional CRDs; removes the ones it installed on leaving."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.installed: set[str] = set()

    def install(self, names: tuple[str, ...]) -> None:
        """Apply each CRD and wait until discovery serves its kind."""
        for name in names:
            self._install(name)

    def remove(self, names: tuple[str, ...]) -> None:
        """Delete each CRD (if it is there) and wait until it is gone and no longer served."""
        for name in names:
            self._remove(name)

    def _install(self, name: str) -> None:
        document = manifest(name)
        self.kube.request(
            "PATCH",
            f"{CRD_PATH}/{name}",
            query={"fieldManager": "channelworks-tests", "force": "true"},
            body=document,
            content_type="application/apply-patch+yaml",
        )
        self.installed.add(name)
        api_version, kind = _api(document)
        eventually(
            lambda: kind in served_kinds(self.kube, api_version),
            timeout=WAIT,
            interval=0.2,
            message=f"{kind} served in {api_version}",
        )

    def _remove(self, name: str) -> None:
        api_version, kind = _api(manifest(name))
        try:
            self.kube.request("DELETE", f"{CRD_PATH}/{name}")
        except ApiError as error:
            if not error.not_found:
                raise
        self.installed.discard(name)

        def gone() -> bool:
            try:
                self.kube.request("GET", f"{CRD_PATH}/{name}")
            except ApiError as error:
                if error.not_found:
                    return kind not in served_kinds(self.kube, api_version)
                raise
            return False

        eventually(gone, timeout=WAIT, interval=0.2, message=f"CRD {name} removed")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove(tuple(sorted(self.installed)))
