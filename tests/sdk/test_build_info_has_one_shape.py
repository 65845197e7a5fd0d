"""``channelworks_build_info`` has one shape in every process (the interface's had a ``python``
label, the worker's and the operator's not; three copies of the same gauge): component, version
and python, from ``channelworks.process.build``."""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry

from channelworks_interface.metrics import Metrics as InterfaceMetrics
from channelworks_operator.metrics import Metrics as OperatorMetrics
from channelworks_worker.metrics import WorkerMetrics


def _build_info(registry: CollectorRegistry) -> dict[str, str]:
    (family,) = [f for f in registry.collect() if f.name == "channelworks_build_info"]
    (sample,) = family.samples
    assert sample.value == 1
    return dict(sample.labels)


def test_every_component_says_its_build_with_the_same_labels() -> None:
    found = {}
    for make in (InterfaceMetrics, WorkerMetrics, OperatorMetrics):
        registry = CollectorRegistry()
        make(registry)
        labels = _build_info(registry)
        found[labels["component"]] = labels
    assert set(found) == {"interface", "worker", "operator"}
    for labels in found.values():
        assert set(labels) == {"component", "version", "python"}
        assert labels["python"] == platform.python_version()
        assert labels["version"], labels
