"""pytest plugin: mark every test with what it needs, from the fixtures it uses.

Enabled in the top-level ``tests/conftest.py``. The markers are registered in pyproject.toml
(``[tool.pytest.ini_options] markers``, run with ``--strict-markers``); docs/testing.md lists them
with the ``-m`` expressions of the tiers. A test gets a marker when it uses (directly or through
another fixture) one of the fixtures named below; a test that starts such a thing itself, without
a fixture, carries the marker in its own file.

- ``go_binaries``: a binary ``tools/kube/build-binaries.sh`` builds (the control plane, helm,
  promtool, Prometheus).
- ``control_plane``: the real Kubernetes API server (always also ``go_binaries``).
- ``images``: container images built or run with podman.
- ``redis_cluster``: a Redis Cluster (cluster-mode redis-servers), shared or its own, also for
  a test with a parameter whose value is ``"cluster"``.
- ``browser``: headless Chromium.

Under pytest-xdist (``-n N --dist loadgroup``) tests are also grouped, so what they share is
made once: every ``images`` test runs on one worker (one image build, no two builds at once),
and the tests of a module that uses a module-scoped fixture (a shared interface process, a
module's own control plane) run on one worker; every other test goes wherever a worker is free.
The group reaches xdist's scheduler as an ``@group`` suffix of the test's id (``pin_to_group``).
"""

from __future__ import annotations

import pytest

CONTROL_PLANE_FIXTURES = frozenset(
    {"control_plane", "kube_api", "own_control_plane", "own_kube_api", "bare_cluster"}
)
GO_BINARY_FIXTURES = CONTROL_PLANE_FIXTURES | {"helm"}
IMAGE_FIXTURES = frozenset({"images", "worker_base"})
REDIS_CLUSTER_FIXTURES = frozenset(
    {
        "redis_cluster",
        "cluster_url",
        "killable_redis_cluster",
        "unformed_cluster",
        "namespaced_cluster",
        "raw_nodes",
    }
)

# Tests parametrized over layer backends ask for the cluster's fixture at run time
# (``request.getfixturevalue``), which collection cannot see: a parameter (of any name:
# ``backend``, ``mode``, ``url``...) whose value is "cluster" says it.
REDIS_CLUSTER_PARAMETER = "cluster"

MARKERS_BY_FIXTURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("go_binaries", GO_BINARY_FIXTURES),
    ("control_plane", CONTROL_PLANE_FIXTURES),
    ("images", IMAGE_FIXTURES),
    ("redis_cluster", REDIS_CLUSTER_FIXTURES),
)


def needed_markers(
    fixture_names: set[str], parameters: set[tuple[str, object]], own_markers: set[str]
) -> set[str]:
    """The markers a test needs: from its fixtures and parameters, plus what its own markers
    imply."""
    needed = {marker for marker, fixtures in MARKERS_BY_FIXTURES if fixture_names & fixtures}
    if any(value == REDIS_CLUSTER_PARAMETER for _, value in parameters):
        needed.add("redis_cluster")
    if "control_plane" in own_markers | needed:
        needed.add("go_binaries")
    return needed - own_markers


def xdist_group(item: pytest.Item, markers: set[str]) -> str | None:
    """The group a test runs in under ``--dist loadgroup`` (None: any worker)."""
    if "images" in markers:
        return "images"
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = fixture_info.name2fixturedefs.values() if fixture_info else ()
    if any(d.scope in ("module", "class") for defs in definitions for d in defs):
        return item.nodeid.split("::")[0]
    return None


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects anything
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    distributed = config.pluginmanager.hasplugin("xdist")
    for item in items:
        fixture_names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        parameters = {
            (name, value)
            for name, value in (callspec.params.items() if callspec else ())
            if isinstance(value, str)
        }
        own = {mark.name for mark in item.iter_markers()}
        for marker in sorted(needed_markers(fixture_names, parameters, own)):
            item.add_marker(marker)
        group = xdist_group(item, {mark.name for mark in item.iter_markers()})
        if distributed and group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        if getattr(config.option, "loadgroup", False):  # an xdist worker under --dist loadgroup
            pin_to_group(item)


def pin_to_group(item: pytest.Item) -> None:
    """Give the test id the ``@group`` suffix that ``--dist loadgroup`` schedules by.

    pytest-xdist 3.8 writes it to ``item._nodeid``, which pytest 9 no longer reads (a node's id
    is ``item._id``): its groups were ignored, and a module's tests went to several workers, each
    setting up the module's fixtures (a control plane, an interface, the images) again.
    """
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    node_id = getattr(item, "_id", None)
    if names and node_id is not None and "@" not in item.nodeid:
        item._id = type(node_id).parse(f"{item.nodeid}@{'_'.join(sorted(names))}")
