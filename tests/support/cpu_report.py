"""pytest plugin: where the suite's time and CPU go, per test and per file (opt-in).

Enabled in the top-level ``tests/conftest.py``; it does nothing unless asked::

    pytest --cpu-report=build/cpu-report.json -m "not go_binaries"

For every test it adds up, over setup, call and teardown: the wall time, the CPU time of the
pytest process itself (user + system, every thread of it: in-process servers and event loops
count here) and the CPU time of the child processes that ended and were waited for in that time
(redis-servers, interface and worker processes, ``git``, ``helm``...: what ``getrusage`` charges
to ``RUSAGE_CHILDREN``). A process started by a module- or session-scoped fixture is charged to
the test whose teardown stops it, so the per-file figures are the ones to compare.

The JSON file holds ``tests`` (one row per test), ``files`` (the sums per file, most CPU first)
and ``processes`` (the whole pytest process or xdist worker, collection and start-up included).
The terminal summary shows the files and tests that cost the most CPU. Under pytest-xdist the
workers send their figures to the controller, which writes the one file.
"""

from __future__ import annotations

import json
import resource
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

REPORT_KEY = "cpu_report"
SHOWN_ROWS = 15
_PHASE_START = pytest.StashKey["Usage"]()
_PHASE_USAGE = pytest.StashKey["Usage"]()


@dataclass(frozen=True)
class Usage:
    """CPU seconds (user + system) of this process and of its waited-for children."""

    own: float
    children: float

    @staticmethod
    def now() -> Usage:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Usage(own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.own - other.own, self.children - other.children)


@dataclass
class Row:
    """What one test (or one file) cost."""

    name: str
    wall: float = 0.0
    own_cpu: float = 0.0
    children_cpu: float = 0.0
    tests: int = 0
    worker: str = ""

    @property
    def cpu(self) -> float:
        return self.own_cpu + self.children_cpu

    def add(self, wall: float, own: float, children: float) -> None:
        self.wall += wall
        self.own_cpu += own
        self.children_cpu += children


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("cpu report").addoption(
        "--cpu-report",
        metavar="PATH",
        default=None,
        help="write each test's and each file's wall time and CPU time (own and children's) "
        "to PATH as JSON, and show the costliest in the summary (tests/support/cpu_report.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--cpu-report")
    if path:
        config.pluginmanager.register(CpuReport(Path(path), config), "cpu-report")


class CpuReport:
    """Measures in every process; collects and writes in the controller (or the only process)."""

    def __init__(self, path: Path, config: pytest.Config) -> None:
        self.path = path
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        # The xdist worker's id (gw0, gw1...), or "main" in a run without workers.
        worker_input = getattr(config, "workerinput", {})
        self.name = worker_input.get("workerid", "main")
        self.tests: dict[str, Row] = {}
        self.processes: dict[str, dict[str, float]] = {}

    # --- measuring (every process) ---------------------------------------------------------
    def _measure(self, item: pytest.Item) -> Any:
        item.stash[_PHASE_START] = Usage.now()
        try:
            return (yield)
        finally:
            item.stash[_PHASE_USAGE] = Usage.now() - item.stash[_PHASE_START]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Any:
        return (yield from self._measure(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        return (yield from self._measure(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Any:
        return (yield from self._measure(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> pytest.TestReport:
        report: pytest.TestReport = yield
        usage = item.stash.get(_PHASE_USAGE, None)
        if usage is not None:
            report.user_properties.append(
                (
                    REPORT_KEY,
                    {"own": usage.own, "children": usage.children, "worker": self.name},
                )
            )
            del item.stash[_PHASE_USAGE]
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        total = Usage.now()
        figures = {"own_cpu": total.own, "children_cpu": total.children}
        if self.is_worker:
            self.config.workeroutput[REPORT_KEY] = figures  # type: ignore[attr-defined]
            return
        # The workers have reported by now (pytest_testnodedown comes first).
        self.processes["controller" if self.processes else "main"] = figures
        self.write()

    # --- collecting (controller or the only process) ---------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        for name, value in report.user_properties:
            if name == REPORT_KEY:
                row = self.tests.setdefault(report.nodeid, Row(report.nodeid))
                row.add(report.duration, value["own"], value["children"])
                row.worker = value["worker"]
                if report.when == "call" or (report.when == "setup" and not report.passed):
                    row.tests = 1

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        figures = getattr(node, "workeroutput", {}).get(REPORT_KEY)
        if figures:
            self.processes[node.gateway.id] = figures

    def files(self) -> list[Row]:
        by_file: dict[str, Row] = defaultdict(lambda: Row(""))
        for row in self.tests.values():
            name = row.name.split("::")[0]
            file_row = by_file[name]
            file_row.name = name
            file_row.add(row.wall, row.own_cpu, row.children_cpu)
            file_row.tests += row.tests
        return sorted(by_file.values(), key=lambda r: r.cpu, reverse=True)

    def write(self) -> None:
        tests = sorted(self.tests.values(), key=lambda r: r.cpu, reverse=True)
        document = {
            "tests": [asdict(row) for row in tests],
            "files": [asdict(row) for row in self.files()],
            "processes": self.processes,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(document, indent=1) + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        files = self.files()
        tests = sorted(self.tests.values(), key=lambda r: r.cpu, reverse=True)
        write = terminalreporter.write_line
        terminalreporter.section("CPU report (seconds)")
        own = sum(r.own_cpu for r in tests)
        children = sum(r.children_cpu for r in tests)
        wall = sum(r.wall for r in tests)
        write(f"all tests: wall {wall:.1f}, own CPU {own:.1f}, children's CPU {children:.1f}")
        for worker, figures in sorted(self.processes.items()):
            write(
                f"process {worker}: own CPU {figures['own_cpu']:.1f}, "
                f"children's CPU {figures['children_cpu']:.1f} (collection and start-up included)"
            )
        for title, rows in (("files", files), ("tests", tests)):
            write(f"costliest {title} (wall / own CPU / children's CPU / tests):")
            for row in rows[:SHOWN_ROWS]:
                write(
                    f"  {row.wall:7.1f} {row.own_cpu:7.1f} {row.children_cpu:7.1f} "
                    f"{row.tests:4d}  {row.name}"
                )
        write(f"all rows: {self.path}")
