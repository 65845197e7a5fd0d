"""The Python processes a test starts write their compiled bytecode to one cache of the run
(tests/support/bytecode_cache.py) and read it back, even where ``PYTHONDONTWRITEBYTECODE`` is set:
compiling Daphne, Twisted and Django again in every process was most of the suite's CPU time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.processes import clean_env

ROOT = Path(__file__).resolve().parents[2]
REPORT = "import sys, probe; print(sys.pycache_prefix, sys.flags.dont_write_bytecode)"


def test_a_child_process_compiles_into_the_runs_cache_not_beside_the_sources(
    tmp_path: Path,
) -> None:
    (tmp_path / "probe.py").write_text("VALUE = 1\n")
    done = subprocess.run(
        [sys.executable, "-c", REPORT],
        env=clean_env(PYTHONPATH=str(tmp_path)),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    prefix, dont_write = done.stdout.split()
    assert dont_write == "0"
    assert prefix == sys.pycache_prefix  # build/pycache unless PYTHONPYCACHEPREFIX names another
    compiled = Path(prefix, *tmp_path.parts[1:])
    assert list(compiled.glob("probe.cpython-*.pyc")), f"nothing compiled into {compiled}"
    assert not (tmp_path / "__pycache__").exists()


def test_the_test_modules_are_compiled_into_the_cache_too() -> None:
    assert sys.pycache_prefix is not None and not sys.dont_write_bytecode
    this = Path(__file__).resolve()
    assert list(Path(sys.pycache_prefix, *this.parent.parts[1:]).glob(f"{this.stem}.*.pyc"))


INNER = """
import subprocess, sys


def test_a_child_imports_a_module_of_the_temporary_folder(tmp_path):
    (tmp_path / "scratch.py").write_text("VALUE = 2\\n")
    code = "import scratch"
    subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ,
                   "PYTHONPATH": str(tmp_path)}, check=True)
"""


def inner_env(**extra: str) -> dict[str, str]:
    """A child pytest's environment: not this run's pytest options (PYTEST_ADDOPTS...)."""
    return {k: v for k, v in clean_env(**extra).items() if not k.startswith("PYTEST_")}


def test_what_a_run_compiled_in_its_temporary_folders_is_removed_at_its_end(
    tmp_path: Path,
) -> None:
    suite, base, prefix = tmp_path / "suite", tmp_path / "base", tmp_path / "pycache"
    suite.mkdir()
    (suite / "test_inner.py").write_text(INNER)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.bytecode_cache", "-p",
         "no:cacheprovider", f"--basetemp={base}", "-q", "test_inner.py"],
        cwd=suite, env=inner_env(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(prefix)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert not Path(prefix, *base.resolve().parts[1:]).exists()  # scratch.py's, gone
    kept = Path(prefix, *suite.resolve().parts[1:])
    assert list(kept.glob("test_inner.*.pyc")), "the test module's own bytecode is kept"
