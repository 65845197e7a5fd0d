"""The install commands ``dev`` and ``status`` print install into the Python running
``channelworks``, named by its path (a bare ``python`` or ``pip`` may be another one): with its pip,
or with ``uv pip install --python`` when it has none (a ``uv venv``). The uv form is run as printed
by the install test; this one checks both forms and that the shell reads them as meant."""

from __future__ import annotations

import shlex

from channelworks import install_hints

PYTHON = "/home/you/venvs/my app/bin/python"  # a space, as a home folder may have


def test_with_pip_the_command_is_that_pythons_pip() -> None:
    command = install_hints.install_command("kubernetes<38,>=31", python=PYTHON, has_pip=True)
    assert shlex.split(command) == [PYTHON, "-m", "pip", "install", "kubernetes<38,>=31"]


def test_without_pip_the_command_is_uv_pointed_at_that_python() -> None:
    command = install_hints.install_command("dist/*.whl", python=PYTHON, has_pip=False)
    assert shlex.split(command) == ["uv", "pip", "install", "--python", PYTHON, "dist/*.whl"]
    assert command.endswith(" dist/*.whl")  # unquoted: the shell expands the wheels


def test_the_kubernetes_requirement_is_the_sdks_kube_extra() -> None:
    requirement = install_hints.kubernetes_requirement()
    assert requirement.startswith("kubernetes") and "<" in requirement and ">=" in requirement
