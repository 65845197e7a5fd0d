"""Fixtures shared by every test folder: real Redis servers and a real Kubernetes control plane."""

pytest_plugins = ["tests.support.redis_fixtures", "tests.support.kube_fixtures"]
