"""A consumer that records each message it ran as ``<pid> <channel> <n>`` in ``$HARDENING_DIR``'s
``received`` file, for the worker-pool tests."""

import os
from pathlib import Path


def record(message):
    with (Path(os.environ["HARDENING_DIR"]) / "received").open("a") as out:
        out.write(f"{os.getpid()} {message.channel.name} {message['n']}\n")
