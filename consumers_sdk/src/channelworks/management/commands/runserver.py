"""``manage.py runserver`` with WebSockets: Channelworks' interface server and workers in one
process, on the in-memory layer unless told otherwise, under Django's own autoreloader.

Active when ``channelworks`` is in ``INSTALLED_APPS`` ahead of ``django.contrib.staticfiles``
(whose ``runserver`` would win otherwise). Extra options: ``--workers``, ``--concurrency``,
``--layer memory|local``, ``--redis URL``. ``channelworks dev`` does the same with its own
supervisor (and separate processes for the local and Redis layers); see docs/dev-mode.md.
"""

from __future__ import annotations

import os
import sys
from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.management.commands import runserver
from django.db import connections
from django.utils import autoreload

from channelworks.dev import config as config_module
from channelworks.dev import serving
from channelworks.exceptions import ConfigurationError


class Command(runserver.Command):  # type: ignore[misc]
    help = (
        "Starts a development server for HTTP and WebSockets: Channelworks' interface server "
        "with the project's consumers running in the same process."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--workers", type=int, default=1, help="worker loops in this process (default: 1)"
        )
        parser.add_argument(
            "--concurrency", type=int, default=16, help="messages each worker handles at once"
        )
        layer = parser.add_mutually_exclusive_group()
        layer.add_argument(
            "--layer",
            choices=("memory", "local"),
            help="memory (default), or local: reachable from other processes of this machine",
        )
        layer.add_argument("--redis", metavar="URL", help="use this Redis (redis+cluster://) URL")

    def dev_config(self, options: dict[str, Any]) -> config_module.DevConfig:
        return config_module.build(
            project=os.getcwd(),
            settings=settings.SETTINGS_MODULE,
            host="0.0.0.0" if self.addr == "0" else self.addr,
            port=int(self.port),
            workers=options["workers"],
            concurrency=options["concurrency"],
            layer=options["layer"],
            redis_url=options["redis"],
            app=None,
            reload=options["use_reloader"],
            log_level="INFO",
            env=os.environ,
        )

    def run(self, **options: Any) -> None:
        serving.load_runtimes()  # before the autoreloader's thread starts (see its docstring)
        super().run(**options)

    def inner_run(self, *args: Any, **options: Any) -> None:
        autoreload.raise_last_exception()
        try:
            config = self.dev_config(options)
        except ConfigurationError as error:
            self.stderr.write(f"Error: {error}")
            os._exit(2)  # sys.exit does not end the process from the reloader's thread
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for connection in connections.all(initialized_only=True):
            connection.close()
        serving.configure_logging(config, "runserver")
        self.banner(config)
        code = serving.run_all(config, install_signals=not options["use_reloader"])
        if options.get("shutdown_message"):
            self.stdout.write(options["shutdown_message"])
        if options["use_reloader"]:
            os._exit(code)
        sys.exit(code)

    def banner(self, config: config_module.DevConfig) -> None:
        layer = {"memory": "in-memory layer", "local": "local layer"}.get(config.layer, "Redis")
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{datetime.now().strftime('%B %d, %Y - %X')}\n"
            f"Django version {self.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting Channelworks development server (HTTP and WebSockets, {layer}) at "
            f"{config.url}\n"
            f"Quit the server with {quit_command}."
        )
