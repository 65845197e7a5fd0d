"""Consumers that misbehave on request, recording what they ran in ``$HARDENING_DIR``.

- ``http.request``: appends ``<pid> <method> <path>`` to ``executions``, then blocks until the
  file ``release`` exists (so a test can kill the worker while the request runs), then answers 200.
- ``websocket.receive`` with text ``exit`` / ``interrupt`` / ``kill`` / ``hang``: raises
  ``SystemExit(2)`` (as argparse does) / raises ``KeyboardInterrupt`` / SIGKILLs its own worker /
  sleeps for an hour. Any other text is answered ``echo:<text>``. Every run is appended to
  ``received`` first.
- ``websocket.receive`` on ``/async/``: an ``async def`` consumer; ``cancel`` raises a
  ``CancelledError`` nobody asked for, anything else is answered ``echo:<text>``.
"""

import asyncio
import os
import signal
import time
from pathlib import Path

RELEASE_WAIT_SECONDS = 120.0


def _dir() -> Path:
    return Path(os.environ["HARDENING_DIR"])


def _record(name: str, line: str) -> None:
    with (_dir() / name).open("a") as out:
        out.write(f"{os.getpid()} {line}\n")


def http_request(message):
    _record("executions", f"{message['method']} {message['path']}")
    deadline = time.monotonic() + RELEASE_WAIT_SECONDS
    while not (_dir() / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    message.reply_channel.send(
        {"status": 200, "headers": [[b"content-type", b"text/plain"]], "content": b"saved\n"},
        immediately=True,
    )


def receive(message):
    text = message.content.get("text")
    _record("received", str(text))
    if text == "exit":
        raise SystemExit(2)
    if text == "interrupt":
        raise KeyboardInterrupt
    if text == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if text == "hang":
        time.sleep(3600)
    message.reply_channel.send({"text": f"echo:{text}"}, immediately=True)


async def async_receive(message):
    text = message.content.get("text")
    if text == "cancel":
        raise asyncio.CancelledError()
    await message.reply_channel.asend({"text": f"echo:{text}"})
