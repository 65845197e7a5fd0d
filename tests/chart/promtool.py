"""promtool (Prometheus' rule checker and rule unit tester), when
``tests/chart/build-promtool.sh`` has built it from its Go module and cached it."""

from __future__ import annotations

import subprocess
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent / "build-promtool.sh"


def promtool() -> Path | None:
    """The cached promtool, or None when build-promtool.sh has not built it."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dir"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    directory = Path(done.stdout.strip())
    binary = directory / "promtool"
    return binary if (directory / ".stamp-promtool").is_file() and binary.exists() else None
