"""What a benchmark ran on: how busy the shared machine was, and the versions installed."""

from __future__ import annotations

import os
import statistics
import threading


class LoadSampler:
    """The 1-minute load average every 2 s while the benchmark runs (the machine is shared)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(2.0)

    def stop(self) -> str:
        self._stop.set()
        if not self.samples:
            return "-"
        return (
            f"min {min(self.samples):.1f}, median {statistics.median(self.samples):.1f}, "
            f"max {max(self.samples):.1f}"
        )


def package_version(name: str) -> str:
    """The installed version of a distribution, or ``?``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def load() -> str:
    """The 1/5/15-minute load averages, e.g. ``2.1/3.4/3.0``."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())
