"""scripts/test.sh runs pytest with pytest-xdist (CHANNELWORKS_TEST_WORKERS processes, 4 by
default and 6 for the fast tier, --dist loadgroup), as one run of every test when the Go-built
binaries were ready before the tests started, else as the two halves around the builds; it keeps
compiled bytecode for every Python process. Proved on a copy of the script whose installer,
builds, checks and Python are stand-ins that write down how they were called."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST = "not control_plane and not images and not redis_cluster and not go_binaries and not browser"

# A stand-in for the Go builds: SLOW_BUILDS makes them outlast the checks.
BUILD = """#!/usr/bin/env bash
[[ -z "${SLOW_BUILDS:-}" ]] || sleep 1.5
echo "$0 $*" >> "$CALLS"
"""
# With WARM set the last check ends after the builds of stage 'tests', as on a warm cache.
LAST_CHECK = """#!/usr/bin/env bash
echo "lint-imports" >> "$CALLS"
if [[ -n "${WARM:-}" ]]; then
  for _ in $(seq 300); do [[ -f build/go-builds/tests.status ]] && break; sleep 0.1; done
fi
"""
PYTHON = """#!/usr/bin/env bash
printf 'python' >> "$CALLS"; printf ' [%s]' "$@" >> "$CALLS"; echo >> "$CALLS"
echo "bytecode: ${PYTHONPYCACHEPREFIX:-none} ${PYTHONDONTWRITEBYTECODE:-unset}" >> "$CALLS"
exit "${PYTEST_STATUS:-0}"
"""
RECORD = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "test.sh", root / "scripts" / "test.sh")
    stand_ins = {
        "scripts/install-test-deps.sh": RECORD,
        "tools/kube/build-binaries.sh": BUILD,
        "tests/chart/build-promtool.sh": BUILD,
        ".venv/bin/ruff": RECORD,
        ".venv/bin/mypy": RECORD,
        ".venv/bin/lint-imports": LAST_CHECK,
        ".venv/bin/python": PYTHON,
    }
    for name, text in stand_ins.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    return root


def run(checkout: Path, *args: str, **env: str) -> tuple[int, list[str], str]:
    """The script's exit status, the calls the stand-ins saw (pytest's only), and its output."""
    calls = checkout / "calls.log"
    calls.write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CHANNELWORKS_", "PYTHONPY"))}
    done = subprocess.run(
        ["bash", str(checkout / "scripts" / "test.sh"), *args],
        cwd=checkout, env={**base, "CALLS": str(calls), "PYTHONDONTWRITEBYTECODE": "1", **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = calls.read_text().splitlines()
    return (
        done.returncode,
        [line for line in lines if line.startswith(("python", "bytecode"))],
        (done.stdout + done.stderr),
    )


def test_a_warm_run_is_one_parallel_pytest_of_every_test(checkout: Path) -> None:
    status, calls, output = run(checkout, "--no-e2e", WARM="1")
    assert status == 0, output
    assert calls == [
        "python [-m] [pytest] [-n] [4] [--dist] [loadgroup]",
        f"bytecode: {checkout / 'build' / 'pycache'} unset",
    ]


def test_while_the_builds_run_the_two_halves_run_in_parallel_one_after_the_other(
    checkout: Path,
) -> None:
    status, calls, output = run(
        checkout, "--no-e2e", SLOW_BUILDS="1", CHANNELWORKS_TEST_WORKERS="3"
    )
    assert status == 0, output
    assert [call for call in calls if call.startswith("python")] == [
        "python [-m] [pytest] [-n] [3] [--dist] [loadgroup] [-m] [not go_binaries]",
        "python [-m] [pytest] [-n] [3] [--dist] [loadgroup] [-m] [go_binaries]",
    ]


def test_the_fast_tier_runs_serially_when_asked_and_an_empty_run_fails(checkout: Path) -> None:
    status, calls, output = run(checkout, "--fast", "-x", CHANNELWORKS_TEST_WORKERS="0")
    assert status == 0, output
    assert calls[0] == f"python [-m] [pytest] [-m] [{FAST}] [-x]"

    status, calls, output = run(checkout, "--fast")
    assert status == 0, output
    assert calls[0] == f"python [-m] [pytest] [-n] [6] [--dist] [loadgroup] [-m] [{FAST}]"

    status, _, output = run(checkout, "--fast", PYTEST_STATUS="5")
    assert status == 5
    assert "collected no tests" in output


def test_a_worker_count_that_is_not_a_number_is_refused_before_anything_runs(
    checkout: Path,
) -> None:
    status, calls, output = run(checkout, "--fast", CHANNELWORKS_TEST_WORKERS="two")
    assert status == 2
    assert "CHANNELWORKS_TEST_WORKERS must be a whole number" in output and "'two'" in output
    assert calls == []
