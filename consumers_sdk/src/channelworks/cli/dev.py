"""``channelworks dev``: the interface server, workers and the channel layer in one command.

Everything runs on this machine; no Redis is needed. See docs/dev-mode.md.
"""

from __future__ import annotations

import argparse
import os
import sys

from channelworks import cli

NAME = "dev"
HELP = "run a Django project's interface server, workers and channel layer locally, with reload"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_project_arguments(parser)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8000, help="HTTP/WebSocket port (8000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes with --layer local or --redis; worker loops in the single "
        "process with the in-memory layer (default: 1)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        metavar="N",
        help="messages each worker handles at once (default: 16)",
    )
    layer = parser.add_mutually_exclusive_group()
    layer.add_argument(
        "--layer",
        choices=("memory", "local"),
        help="memory (default): one process, no setup; local: separate processes sharing a "
        "no-Redis layer on this machine, reachable from manage.py commands",
    )
    layer.add_argument("--redis", metavar="URL", help="use this Redis (or redis+cluster://) URL")
    parser.add_argument(
        "--app",
        metavar="PREFIX",
        help="the layer's key prefix (default: $CHANNELWORKS_APP, else the project's package)",
    )
    parser.add_argument(
        "--no-reload",
        dest="reload",
        action="store_false",
        help="do not restart on code changes",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        help="log level of the processes (default: INFO)",
    )


EXIT_MISSING_RUNTIMES = 1  # a failure outside the command line, as a missing container engine


def run(args: argparse.Namespace) -> int:
    from channelworks import install_hints
    from channelworks.dev import config as config_module
    from channelworks.dev import runtimes, supervisor
    from channelworks.exceptions import ConfigurationError

    try:
        config = config_module.build(
            project=args.project,
            settings=args.settings,
            host=args.host,
            port=args.port,
            workers=args.workers,
            concurrency=args.concurrency,
            layer=args.layer,
            redis_url=args.redis,
            app=args.app,
            reload=args.reload,
            log_level=args.log_level,
            env=os.environ,
        )
    except ConfigurationError as error:
        print(f"channelworks dev: {error}", file=sys.stderr)
        return 2
    missing = runtimes.missing()
    if missing:  # said once, at once, rather than by every process it would start
        print(f"channelworks dev: {install_hints.runtimes_message(missing)}", file=sys.stderr)
        return EXIT_MISSING_RUNTIMES
    return supervisor.run(config)
