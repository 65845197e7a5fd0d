"""The images scripts/build-images.sh makes are stored under the names that the chart's defaults
and the SDK's default worker base mean to Kubernetes and docker (a bare ``channelworks/NAME`` is
``docker.io/channelworks/NAME``), so a node loaded with ``podman save`` of those names runs what
the chart names. podman alone would store them as ``localhost/channelworks/NAME`` only."""

from __future__ import annotations

import json

import yaml

from channelworks.deploy import dockerfile
from tests.images import podman
from tests.images.conftest import Images

CHART = podman.REPO_ROOT / "charts" / "channelworks"


def as_kubernetes_reads_it(image: str) -> str:
    """The full reference of ``image`` as containerd and docker complete it."""
    first, slash, _ = image.partition("/")
    if not slash:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def stored_names(image: str) -> list[str]:
    """Every name podman stores ``image`` under."""
    tags = podman.podman("image", "inspect", "--format", "{{json .RepoTags}}", image)
    return list(json.loads(tags))


def chart_default(values: dict[str, object], *keys: str) -> str:
    found: object = values
    for key in keys:
        assert isinstance(found, dict)
        found = found[key]
    assert isinstance(found, dict)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return f"{found['repository']}:{found['tag'] or chart['appVersion']}"


def test_the_charts_default_images_are_the_built_ones(images: Images) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    operator = as_kubernetes_reads_it(chart_default(values, "image"))
    interface = as_kubernetes_reads_it(chart_default(values, "operator", "interfaceImage"))
    assert operator in stored_names(images.operator)
    assert interface in stored_names(images.interface)


def test_the_sdks_default_worker_base_is_the_built_one(images: Images) -> None:
    version = images.worker.rsplit(":", 1)[1]
    base = dockerfile.default_base_image(version)
    names = stored_names(images.worker)
    assert as_kubernetes_reads_it(base) in names
    assert images.worker in names  # the localhost/ name the other tests use
