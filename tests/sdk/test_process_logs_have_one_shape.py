"""Interface, worker and operator write their log lines through one set-up
(``channelworks.process.logs``): a JSON line with the time in UTC, the level, the logger, the
message, whatever was passed with ``extra=`` and the traceback; or one plain text line. Before,
each had its own copy, and the interface's dropped the ``extra`` fields the worker's kept."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest

PROGRAM = """
import logging, sys
from {module} import {function}
{call}
log = logging.getLogger("shape")
log.info("taken %s", "one", extra={{"channel": "http.request", "deliveries": 2}})
try:
    raise ValueError("bad input")
except ValueError:
    log.exception("consumer failed")
logging.getLogger("shape").debug("not shown")
"""
SETUPS = {
    "sdk": ("channelworks.process.logs", "configure", 'configure("json", "INFO")'),
    "interface": ("channelworks_interface.main", "logs", 'logs.configure("json", "INFO")'),
    "worker": ("channelworks_worker.main", "logs", 'logs.configure("json", "INFO")'),
    "operator": (
        "channelworks_operator.main",
        "setup_logging",
        "from channelworks_operator.config import OperatorConfig\n"
        "setup_logging(OperatorConfig(log_format='json', log_level='INFO'))",
    ),
}


@pytest.mark.parametrize("component", sorted(SETUPS))
def test_a_component_writes_json_lines_of_one_shape(component: str) -> None:
    module, function, call = SETUPS[component]
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(module=module, function=function, call=call)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["message"] for line in lines] == ["taken one", "consumer failed"]
    taken, failed = lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", taken["time"])
    assert (taken["level"], taken["logger"]) == ("info", "shape")
    assert (taken["channel"], taken["deliveries"]) == ("http.request", 2)
    assert failed["level"] == "error"
    assert "ValueError: bad input" in failed["exception"]


def test_text_lines_say_time_level_logger_and_message(capsys: pytest.CaptureFixture[str]) -> None:
    from channelworks.process import logs

    logs.configure("text", logging.INFO)
    try:
        logging.getLogger("shape").warning("disk %s", "full")
    finally:
        logging.getLogger().handlers.clear()
    assert re.fullmatch(r"\S+ \S+ WARNING shape: disk full\n", capsys.readouterr().err)
