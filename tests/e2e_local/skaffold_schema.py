"""skaffold.yaml's JSON schema, and the problems it finds in a document.

The schema comes from skaffold's own Go module (``docs-v2/content/en/schemas/<version>.json``),
fetched and cached by ``tools/skaffold/fetch-schema.sh``; its file name is the apiVersion it
describes (``v4beta13.json`` is ``skaffold/v4beta13``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = ROOT / "tools" / "skaffold" / "fetch-schema.sh"
FETCH_TIMEOUT = 600.0


class SchemaUnavailable(RuntimeError):
    """The schema could not be fetched (the script's output says why)."""


@dataclass(frozen=True)
class Schema:
    path: Path
    document: dict[str, Any]

    @property
    def api_version(self) -> str:
        """``skaffold/v4beta13`` for ``v4beta13.json``."""
        return f"skaffold/{self.path.stem}"

    def problems(self, config: Any) -> list[str]:
        """Readable problems of ``config``, most specific first: ``path: message``."""
        validator = jsonschema.Draft7Validator(self.document)
        found = _leaves(validator.iter_errors(config))
        found.sort(key=lambda error: -len(error.absolute_path))
        lines: list[str] = []
        for error in found:
            where = "/".join(str(part) for part in error.absolute_path) or "<root>"
            line = f"{where}: {error.message}"
            if line not in lines:
                lines.append(line)
        return lines


def _leaves(errors: Iterable[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """The errors under every anyOf/oneOf branch: the top-level ``anyOf`` of the skaffold schema
    otherwise reports only that the whole document matched no branch."""
    leaves: list[jsonschema.ValidationError] = []
    for error in errors:
        leaves.extend(_leaves(error.context) if error.context else [error])
    return leaves


def fetch() -> Schema:
    """Run the fetch script (a no-op once cached) and load the schema."""
    done = subprocess.run(
        ["bash", str(FETCH_SCRIPT)], capture_output=True, text=True, timeout=FETCH_TIMEOUT
    )
    if done.returncode != 0:
        raise SchemaUnavailable(
            f"{FETCH_SCRIPT.relative_to(ROOT)} failed ({done.returncode}):\n"
            f"{done.stdout}{done.stderr}"
        )
    printed = subprocess.run(
        ["bash", str(FETCH_SCRIPT), "--print-path"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    path = Path(printed.stdout.strip())
    document: dict[str, Any] = json.loads(path.read_text())
    return Schema(path, document)
