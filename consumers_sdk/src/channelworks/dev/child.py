"""A process started by the dev supervisor: ``python -m channelworks.dev.child ROLE CONFIG_JSON``.

ROLE is ``all`` (interface and workers in one process), ``interface`` or ``worker``. The child
runs in a session of its own (so a Ctrl-C reaches only the supervisor, which then stops each child
once, with SIGTERM), and stops itself when the supervisor disappears without stopping it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

from channelworks.dev import serving
from channelworks.dev.config import DevConfig

ROLES: dict[str, Callable[[DevConfig, str | None], int]] = {
    "all": lambda config, ready_file: serving.run_all(config, ready_file=ready_file),
    "interface": serving.run_interface,
    "worker": lambda config, ready_file: serving.run_worker(config),
}
PARENT_CHECK_SECONDS = 0.5


def watch_parent(parent: int) -> None:
    """SIGTERM this process (a graceful stop) once its parent is gone (it was killed)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="channelworks-dev-parent", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in ROLES:
        print(f"usage: python -m channelworks.dev.child {{{','.join(ROLES)}}} CONFIG_JSON")
        return serving.EXIT_CONFIG
    role, config = args[0], DevConfig.from_json(args[1])
    serving.configure_logging(config, role)
    watch_parent(os.getppid())
    return ROLES[role](config, os.environ.get(serving.READY_FILE_VARIABLE) or None)


if __name__ == "__main__":
    sys.exit(main())
