"""``pytest --cpu-report=PATH`` (tests/support/cpu_report.py) charges each test the wall time, its
own CPU and its child processes' CPU, serially and under pytest-xdist, so the suite's costliest
files can be found and cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BURN = 0.4  # CPU seconds each busy test spends
# The inner pytest's environment: not this run's pytest options (PYTEST_ADDOPTS...).
INNER_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}

SAMPLE = f"""
import subprocess, sys, time

BURN = {BURN}
LOOP = "import time\\nend = time.process_time() + {BURN}\\nwhile time.process_time() < end: pass"


def test_busy_itself():
    end = time.process_time() + BURN
    while time.process_time() < end:
        pass


def test_busy_in_a_child():
    subprocess.run([sys.executable, "-c", LOOP], check=True)


def test_waiting():
    time.sleep(BURN)
"""


def _report(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    path = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.cpu_report", "-p", "no:cacheprovider",
         f"--cpu-report={path}", "-q", *args, "test_sample.py"],
        cwd=tmp_path, env={**INNER_ENV, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(path.read_text()), done.stdout


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_each_test_is_charged_its_own_and_its_childrens_cpu(
    tmp_path: Path, xdist: list[str]
) -> None:
    report, summary = _report(tmp_path, *xdist)
    tests = {row["name"].split("::")[1]: row for row in report["tests"]}
    assert set(tests) == {"test_busy_itself", "test_busy_in_a_child", "test_waiting"}
    itself, child, waiting = (
        tests["test_busy_itself"],
        tests["test_busy_in_a_child"],
        tests["test_waiting"],
    )
    assert itself["own_cpu"] >= BURN * 0.9 and itself["children_cpu"] < 0.05
    assert child["children_cpu"] >= BURN * 0.9
    assert waiting["wall"] >= BURN and waiting["own_cpu"] + waiting["children_cpu"] < BURN / 2
    (file_row,) = report["files"]
    assert file_row["name"] == "test_sample.py" and file_row["tests"] == 3
    assert file_row["own_cpu"] + file_row["children_cpu"] >= 2 * BURN * 0.9
    workers = {"gw0", "gw1"} if xdist else {"main"}
    assert {row["worker"] for row in report["tests"]} <= workers
    assert set(report["processes"]) == (workers | {"controller"} if xdist else workers)
    assert "CPU report (seconds)" in summary and "costliest files" in summary
