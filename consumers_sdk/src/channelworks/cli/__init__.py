"""The ``channelworks`` command: ``channelworks <subcommand> [options]``.

Each subcommand is one module of this package, listed in :data:`SUBCOMMANDS`. A module provides

- ``NAME`` (the word typed after ``channelworks``) and ``HELP`` (one line for ``--help``);
- ``add_arguments(parser)``: its options, on an ``argparse`` sub-parser;
- ``run(args) -> int``: does the work and returns the process exit code.

Adding a subcommand is writing its module and adding one line to :data:`SUBCOMMANDS`. Modules are
imported to build the parser, so they import nothing heavy (Django, Daphne) at module level.

A subcommand reports bad input or a failure by raising one of the package's errors
(``channelworks.exceptions``): :func:`main` prints ``channelworks <command>: <message>`` and exits
with 2 for wrong input (``ProjectError``, ``ConfigurationError``) and 1 for anything else.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from channelworks import exceptions

SUBCOMMANDS: tuple[str, ...] = (
    # One line per subcommand module, in the order ``channelworks --help`` lists them.
    "channelworks.cli.dev",
    "channelworks.cli.init",
    "channelworks.cli.build",
    "channelworks.cli.manifest",
    "channelworks.cli.status",
)

EXIT_USAGE = 2
EXIT_FAILED = 1

Runner = Callable[[argparse.Namespace], int]


def add_project_arguments(parser: argparse._ActionsContainer) -> None:
    """``--project`` and ``--settings``: the Django project a subcommand works on, the same
    options with the same defaults for every subcommand that takes them."""
    parser.add_argument(
        "--project", metavar="DIR", help="the project's folder, with manage.py (default: here)"
    )
    parser.add_argument(
        "--settings",
        metavar="MODULE",
        help="Django settings module (default: $DJANGO_SETTINGS_MODULE, else manage.py's)",
    )


def _load(module_name: str) -> ModuleType:
    module = importlib.import_module(module_name)
    for attribute in ("NAME", "HELP", "add_arguments", "run"):
        if not hasattr(module, attribute):
            raise TypeError(f"subcommand module {module_name} lacks {attribute!r}")
    return module


def build_parser(subcommands: Sequence[str] = SUBCOMMANDS) -> argparse.ArgumentParser:
    """The parser of ``channelworks`` with every subcommand of ``subcommands`` (module paths)."""
    parser = argparse.ArgumentParser(
        prog="channelworks",
        description="Channelworks: Django Channels-style real-time apps on a scalable layer.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for module_name in subcommands:
        module = _load(module_name)
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``channelworks`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    run: Runner | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except exceptions.ChannelworksError as error:
        print(f"channelworks {args.command}: {error}", file=sys.stderr)
        wrong_input = (exceptions.ProjectError, exceptions.ConfigurationError)
        return EXIT_USAGE if isinstance(error, wrong_input) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
