"""autobahn's per-frame debug arguments are formatted only when a debug line is written.

Run in a fresh interpreter: importing the Daphne glue installs Twisted's asyncio reactor, which
must not happen in the test process (the in-process interface of conftest installs its own).
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json

from autobahn import util
from autobahn.twisted import websocket as twisted_websocket
from autobahn.websocket import protocol
from twisted.logger import formatEvent

from channelworks_interface import daphne_glue

formatted = []


class Peer:
    def __str__(self):
        formatted.append(1)
        return "tcp:127.0.0.1:5000"


LINE = "{func} sent {data_len} bytes for peer {peer}"
peer = Peer()
expected = formatEvent({
    "log_format": LINE,
    "func": util.hltype(protocol.WebSocketProtocol.sendData),
    "data_len": util.hlval(12),
    "peer": util.hlval(peer),
})
daphne_glue.defer_debug_formatting()
daphne_glue.defer_debug_formatting()  # a second call changes nothing
results = {}
for module in (protocol, twisted_websocket):
    formatted.clear()
    arguments = {
        "func": module.hltype(protocol.WebSocketProtocol.sendData),
        "data_len": module.hlval(12),
        "peer": module.hlval(peer),
    }
    built = len(formatted)
    text = formatEvent({"log_format": LINE, **arguments})
    results[module.__name__] = {"built": built, "written": len(formatted), "text": text}
print(json.dumps({"expected": expected, "results": results}))
"""


def test_debug_arguments_are_formatted_when_written_and_read_as_before() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "sendData" in report["expected"] and "tcp:127.0.0.1:5000" in report["expected"]
    for module, result in report["results"].items():
        assert result["built"] == 0, f"{module}: a debug argument was formatted when built"
        assert result["written"] == 1, module
        assert result["text"] == report["expected"], module
