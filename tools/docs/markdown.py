"""What the reference generators share: table cells, values shown as code, writing or checking."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class ReferenceError(Exception):
    """The sources of a reference page disagree (a field without a note, a stale note...)."""


def cell(text: str) -> str:
    """Text that is safe inside a markdown table cell (one line, no bare pipe)."""
    return " ".join(text.split()).replace("|", "\\|")


def code(value: Any) -> str:
    """A value as inline code: strings as they are, everything else as compact JSON."""
    shown = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    if shown == "":
        return '`""`'
    return "`" + " ".join(shown.split()).replace("`", "'") + "`"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run(render: Callable[[], str], output: Path, argv: Sequence[str] | None = None) -> int:
    """Write ``output`` from ``render()``; with ``--check``, only say whether it is current."""
    name = shown(output)
    parser = argparse.ArgumentParser(description=f"Generate {name}.")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed page differs; write nothing"
    )
    args = parser.parse_args(argv)
    try:
        text = render()
    except ReferenceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if not output.exists() or output.read_text() != text:
            print(f"{name} is out of date; regenerate it without --check", file=sys.stderr)
            return 1
        print(f"{name} is current")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(f"wrote {name}")
    return 0
