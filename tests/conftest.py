"""Fixtures shared by every test folder: real Redis servers and a real Kubernetes control plane;
markers saying what each test needs (tests/support/markers.py)."""

pytest_plugins = [
    "tests.support.redis_fixtures",
    "tests.support.kube_fixtures",
    "tests.support.markers",
]
