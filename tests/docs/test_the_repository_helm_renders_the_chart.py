"""The helm that ``tools/kube/build-binaries.sh`` builds agrees with the chart's ``kubeVersion``:
``helm template`` of the chart works as docs/install.md and docs/helm.md show it, with no cluster
and no ``--kube-version``."""

from __future__ import annotations

import subprocess

from tests.chart.helm import Helm
from tools.docs.markdown import ROOT

CHART = ROOT / "charts" / "channelworks"


def test_helm_template_renders_the_chart_without_a_kube_version(helm: Helm) -> None:
    done = subprocess.run(
        [str(helm.binary), "template", "channelworks", str(CHART)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "kind: Deployment" in done.stdout
