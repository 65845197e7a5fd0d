"""``channelworks init NAME``: a new Django project to start from, ready for ``channelworks dev``
and ``channelworks build``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "init"
HELP = "create a new project: settings with the channel layer, consumers, routing, requirements"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the project's Python package (e.g. my_chat)")
    parser.add_argument(
        "--directory",
        metavar="DIR",
        help="folder to create the project in, new or empty (default: ./NAME)",
    )


def run(args: argparse.Namespace) -> int:
    from channelworks.deploy import scaffold

    name = scaffold.check_name(args.name)
    destination = Path(args.directory or name).expanduser().resolve()
    files = scaffold.render(scaffold.default_values(name))
    scaffold.write(destination, files)
    print(f"created {name} in {destination}:", file=sys.stderr)
    for path in sorted(files):
        print(f"  {path}", file=sys.stderr)
    print(
        f"next: cd {destination} && channelworks dev",
        file=sys.stderr,
    )
    print(destination)
    return 0
