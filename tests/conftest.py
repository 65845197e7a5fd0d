"""Fixtures shared by every test folder: real Redis servers (and, where built, Kubernetes)."""

pytest_plugins = ["tests.support.redis_fixtures"]
