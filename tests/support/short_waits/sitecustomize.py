"""Run by Python at start-up when this folder is on PYTHONPATH: the child process (an interface
or a worker started by a test) gets the Redis layer's short waits (tests/support/redis_waits.py)."""

from tests.support import redis_waits

redis_waits.shorten()
