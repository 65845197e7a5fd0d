"""``channelworks dev`` finds the interface server and the worker runtime through the entry points
their packages register (docs/dev-mode.md, "How dev finds the runtimes"), not by importing them:
a runtime whose installed metadata registers none counts as missing, and dev names exactly that
package and the command that installs it, and exits 1 before starting anything.

The test shadows one runtime's installed metadata with a copy that registers no entry point (a
folder first on ``PYTHONPATH`` holding ``<name>-0.1.0.dist-info`` without ``entry_points.txt``,
which Python's metadata lookup finds first): the package itself stays importable, so a check of
whether its module can be imported would wrongly start serving.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import cli
from tests.dataplane import processes


@pytest.mark.parametrize("distribution", ["channelworks-interface", "channelworks-worker"])
def test_dev_names_the_runtime_that_registers_no_entry_point(
    tmp_path: Path, distribution: str
) -> None:
    project = cli.init(tmp_path, "my_app")
    shadow = tmp_path / "shadow"
    metadata = shadow / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
    metadata.mkdir(parents=True)
    (metadata / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n"
    )
    port = str(processes.free_port())

    done = cli.run(
        "dev", "--port", port, "--no-reload", cwd=project, env=cli.clean_env(PYTHONPATH=str(shadow))
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"(missing: {distribution})" in done.stderr, done.stderr
    assert "in a clone of the Channelworks repository, run scripts/build-wheels.sh && " in (
        done.stderr.replace("\n", " ")
    )
    assert "serving at" not in done.stdout
