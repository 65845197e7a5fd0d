"""Markers follow the fixtures a test uses (tests/support/markers.py), so ``-m`` picks the tests a
machine can run: a test that needs the control plane is never in the fast tier."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support import markers

ROOT = Path(__file__).resolve().parents[2]
FAST = "not control_plane and not images and not redis_cluster and not go_binaries and not browser"


def test_fixtures_and_parameters_give_their_markers() -> None:
    assert markers.needed_markers({"kube_api", "tmp_path"}, set(), set()) == {
        "control_plane",
        "go_binaries",
    }
    assert markers.needed_markers({"helm"}, set(), set()) == {"go_binaries"}
    assert markers.needed_markers({"images"}, set(), set()) == {"images"}
    assert markers.needed_markers({"make_layer"}, {("backend", "cluster")}, set()) == {
        "redis_cluster"
    }
    assert markers.needed_markers({"url"}, {("url", "cluster")}, set()) == {"redis_cluster"}
    assert markers.needed_markers({"make_layer"}, {("backend", "redis")}, set()) == set()
    assert markers.needed_markers(set(), set(), {"control_plane"}) == {"go_binaries"}


def _collected(*args: str) -> tuple[set[str], int]:
    """The test ids pytest collects with ``args``, and how many it saw before ``-m``."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 5), done.stdout + done.stderr
    ids = {line for line in done.stdout.splitlines() if "::" in line}
    seen = re.search(r"(?:\d+/)?(\d+) tests? collected", done.stdout)
    assert seen is not None, done.stdout
    return ids, int(seen.group(1))


def test_the_go_binary_split_holds_every_test_once_and_the_fast_tier_none_of_them() -> None:
    files = [
        "tests/control_plane/test_control_plane_works.py",
        "tests/infrastructure/test_redis_fixtures_start_real_servers.py",
        "tests/docs/test_the_repository_helm_renders_the_chart.py",
    ]
    needing, total = _collected(*files, "-m", "go_binaries")
    not_needing, _ = _collected(*files, "-m", "not go_binaries")
    fast, _ = _collected(*files, "-m", FAST)
    assert len(needing | not_needing) == total
    assert not needing & not_needing
    plane = "tests/control_plane/test_control_plane_works.py::"
    assert f"{plane}test_apiserver_answers_with_the_pinned_version" in needing
    assert f"{plane}test_stopping_ends_every_process_and_removes_the_directory" in needing
    assert f"{plane}test_missing_binaries_say_how_to_build_them" in fast
    assert (
        "tests/docs/test_the_repository_helm_renders_the_chart.py::"
        "test_helm_template_renders_the_chart_without_a_kube_version"
    ) in needing
    redis = "tests/infrastructure/test_redis_fixtures_start_real_servers.py::"
    assert f"{redis}test_killing_a_master_promotes_its_replica_and_the_cluster_recovers" not in fast
    assert f"{redis}test_standalone_server_with_requirepass_refuses_clients_without_it" in fast
