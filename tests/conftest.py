"""Fixtures shared by every test folder: real Redis servers and a real Kubernetes control plane;
markers saying what each test needs (tests/support/markers.py); an opt-in CPU report
(``--cpu-report=PATH``, tests/support/cpu_report.py); one bytecode cache for every Python
process of the run (tests/support/bytecode_cache.py); a run stopped with SIGTERM tears down what
its tests started (tests/support/stopping.py)."""

pytest_plugins = [
    "tests.support.bytecode_cache",
    "tests.support.redis_fixtures",
    "tests.support.kube_fixtures",
    "tests.support.markers",
    "tests.support.cpu_report",
    "tests.support.stopping",
]
