"""Turn `uv export` output into the marker-free, hash-pinned list an image installs.

`uv export --frozen` writes the locked versions with environment markers
(``async-timeout==5.0.1 ; python_full_version < '3.11.3'``). pip evaluates such markers for the
interpreter that runs it, and that interpreter is the host's, not the image's: Debian bookworm's
python3 is 3.11.2 while a python:3.11 image is a later 3.11. This keeps every requirement whose
marker holds for *some* CPython 3.11 on Linux x86_64, drops the rest (PyPy-only pins, Windows-only
packages), and writes each kept one as ``name==version --hash=...``, so one wheelhouse serves any
3.11 base and ``pip install --require-hashes`` inside the image checks every file against uv.lock.

    uv export --frozen --no-dev --no-emit-workspace --package channelworks-worker \
        | python tools/images/select_requirements.py > worker.txt
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from packaging.markers import Marker

# The images are CPython 3.11 on Linux x86_64; the patch level depends on the base image.
_TARGET = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "python_version": "3.11",
}
_PATCH_LEVELS = ("3.11.0", "3.11.2", "3.11.3", "3.11.99")


@dataclass(frozen=True)
class Requirement:
    pin: str  # name==version
    marker: str  # "" when the line had none
    hashes: tuple[str, ...]


def parse(lines: Iterable[str]) -> Iterator[Requirement]:
    """The requirements of a `uv export` requirements.txt, with their hashes."""
    pin, marker, hashes = "", "", []
    for raw in lines:
        line = raw.rstrip("\n")
        text = line.strip().rstrip("\\").strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("--hash="):
            hashes.append(text)
            continue
        if text.startswith("-"):
            raise SystemExit(f"select_requirements: unexpected option line {line!r}")
        if pin:
            yield Requirement(pin, marker, tuple(hashes))
        requirement, _, marker = text.partition(";")
        pin, marker, hashes = requirement.strip(), marker.strip(), []
    if pin:
        yield Requirement(pin, marker, tuple(hashes))


def applies_to_image(requirement: Requirement) -> bool:
    """True when the marker holds for at least one CPython 3.11 patch level on Linux x86_64."""
    if not requirement.marker:
        return True
    marker = Marker(requirement.marker)
    return any(
        marker.evaluate({**_TARGET, "python_full_version": patch}) for patch in _PATCH_LEVELS
    )


def render(requirements: Iterable[Requirement]) -> str:
    lines = []
    for requirement in requirements:
        if not requirement.hashes:
            raise SystemExit(
                f"select_requirements: {requirement.pin} has no hash; export with hashes"
            )
        lines.append(" ".join([requirement.pin, *requirement.hashes]))
    return "".join(f"{line}\n" for line in lines)


def main() -> None:
    selected = [r for r in parse(sys.stdin) if applies_to_image(r)]
    if not selected:
        raise SystemExit("select_requirements: no requirement on stdin (pipe `uv export` in)")
    sys.stdout.write(render(selected))


if __name__ == "__main__":
    main()
