"""The install commands the ``channelworks`` command prints when a part is missing.

Each command installs into the Python that runs ``channelworks`` (named by its path: a bare
``python`` or ``pip`` may be another one when the virtualenv is not activated), with pip when that
Python has it, else with ``uv pip install --python`` (a virtualenv made by ``uv venv`` has no pip).
The Channelworks packages are not on a package index: they are installed from the wheels that
``scripts/build-wheels.sh`` builds in a clone of the repository (docs/cli.md#install).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shlex
import sys


def install_command(
    *requirements: str, python: str | None = None, has_pip: bool | None = None
) -> str:
    """The shell command that installs ``requirements`` into ``python`` (default: this one)."""
    python = python or sys.executable
    if has_pip is None:
        has_pip = importlib.util.find_spec("pip") is not None
    words = (
        [python, "-m", "pip", "install"]
        if has_pip
        else ["uv", "pip", "install", "--python", python]
    )
    # A glob stays unquoted so that the shell expands it; anything else is quoted as needed.
    return " ".join([*map(shlex.quote, words), *(_word(part) for part in requirements)])


def _word(requirement: str) -> str:
    return requirement if requirement == "dist/*.whl" else shlex.quote(requirement)


def runtimes_message(missing: list[str]) -> str:
    """Why ``channelworks dev`` cannot start without its runtimes (``missing``: their
    distributions, see :mod:`channelworks.dev.runtimes`), and the commands that install them."""
    return (
        f"the interface server and the worker runtime that dev runs are not installed for "
        f"{sys.executable} (missing: {', '.join(missing)}). They are not on a package index: in "
        f"a clone of the Channelworks repository, run scripts/build-wheels.sh && "
        f"{install_command('dist/*.whl')} (docs/cli.md#install)"
    )


def kubernetes_message() -> str:
    """Why ``channelworks status`` needs the Kubernetes client, and the command that installs it."""
    return (
        f"the Kubernetes client is not installed for {sys.executable}: "
        f"{install_command(kubernetes_requirement())} (docs/cli.md#install)"
    )


def kubernetes_requirement() -> str:
    """The Kubernetes client as the SDK's ``kube`` extra pins it (e.g. ``kubernetes<38,>=31``)."""
    for requirement in importlib.metadata.requires("channelworks") or []:
        name, _, marker = requirement.partition(";")
        if "extra" in marker and "kube" in marker:
            return name.strip()
    return "kubernetes"
