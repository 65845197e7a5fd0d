"""Under ``pytest -n 2 --dist loadgroup`` the tests of a module with a module-scoped fixture run
on one worker, which makes the fixture once (tests/support/markers.py); other tests go to any
worker. With pytest 9, pytest-xdist 3.8's own grouping is lost (it writes an id pytest no longer
reads), and such a module's tests were spread over both workers, each making the fixture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHARED = """
import os
import pytest


@pytest.fixture(scope="module")
def shared():
    with open(os.environ["MADE"], "a") as made:
        made.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")


@pytest.mark.parametrize("n", range(6))
def test_uses_the_shared_fixture(shared, n):
    with open(os.environ["RAN"], "a") as ran:
        ran.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""
ALONE = """
import pytest


@pytest.mark.parametrize("n", range(6))
def test_alone(n):
    pass
"""


def test_a_modules_tests_share_one_worker_and_one_fixture(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.support.markers"]\n')
    (tmp_path / "test_shared.py").write_text(SHARED)
    (tmp_path / "test_alone.py").write_text(ALONE)
    made, ran = tmp_path / "made.txt", tmp_path / "ran.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist",
         "loadgroup", "-v", "test_shared.py", "test_alone.py"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT), "MADE": str(made), "RAN": str(ran)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(ran.read_text().split()) == 6
    assert len(set(ran.read_text().split())) == 1, done.stdout  # one worker ran the module
    assert len(made.read_text().split()) == 1, done.stdout  # which made its fixture once
    assert "test_shared.py::test_uses_the_shared_fixture[0]@test_shared.py" in done.stdout
