"""The Redis layer's waits, shortened for tests that idle past them.

In production a blocking read is issued again every 5 s (``connection.BLOCK_SECONDS``), one
exchange may take 15 s (``connection.LINE_TIMEOUT``) and ``receive()`` asks again every 60 s
(``layer.RECEIVE_WAIT_SECONDS``): a test had to idle a minute to cross them all. Shortened, idling
a few times ``LONGEST`` crosses each of them as a minute does. In the test process the fixture
``short_redis_waits`` (tests/layer/conftest.py) applies them; in a child process (an interface or a
worker) ``tests/support/short_waits/sitecustomize.py`` does, when that folder is on its
PYTHONPATH (``CHILD_PYTHONPATH``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

BLOCK_SECONDS = 0.2
LINE_TIMEOUT = 1.0
RECEIVE_WAIT_SECONDS = 1.0
LONGEST = max(BLOCK_SECONDS, LINE_TIMEOUT, RECEIVE_WAIT_SECONDS)
CHILD_PYTHONPATH = str(Path(__file__).resolve().parent / "short_waits")


def shorten(set_attribute: Callable[[Any, str, Any], None] = setattr) -> float:
    """Set the short waits in every layer module that holds them (also those that took
    ``BLOCK_SECONDS`` by name); return ``LONGEST``."""
    from channelworks.layers.redis import connection, layer  # layer loads all the others

    for name, module in list(sys.modules.items()):
        if name.startswith("channelworks.layers.redis") and hasattr(module, "BLOCK_SECONDS"):
            set_attribute(module, "BLOCK_SECONDS", BLOCK_SECONDS)
    set_attribute(connection, "LINE_TIMEOUT", LINE_TIMEOUT)
    set_attribute(layer, "RECEIVE_WAIT_SECONDS", RECEIVE_WAIT_SECONDS)
    return LONGEST
