"""Every install command docs/cli.md shows, and every one the ``channelworks`` command prints,
works as written outside the workspace:

- the install from a clone (``scripts/build-wheels.sh``, ``python -m pip install dist/*.whl``) in
  a fresh ``python3 -m venv``, then ``init``, the new project's README command
  (``python -m pip install -r requirements.txt``), its own tests, ``channelworks dev``, a model
  with a migration (dev warns until ``migrate``), ``build --context-only`` and ``manifest``;
- the install from the Git repository (three ``git+URL#subdirectory=...`` requirements);
- in a ``uv venv`` (no pip) holding only the SDK: ``status`` and ``dev`` each say which part is
  missing and print the command that installs it for the Python running them; those commands,
  run as printed, make ``status`` reach its next question and ``dev`` serve the project.

Only what the test cannot do as a user would is changed: the wheels go to a temporary ``dist/``
(not the repository's), the venvs to a temporary folder, the Git URL is a repository made of
this checkout's files (``git+file://localhost/...``), and the installers read the locked third-party
wheels from the wheelhouse of ``scripts/build-images.sh --wheelhouse-only`` with no index (pip
also reads the build backend, hatchling, from a folder downloaded once into the cache for the
Git install) and skip compiling bytecode (time on a 2-core CI machine).
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from tests.cli import install
from tests.dataplane import devmode, processes
from tests.support.made_once import made_once

REPO = processes.REPO
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "channelworks"
BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"
# What scripts/build-images.sh holds while it builds (its cache folder's .lock).
IMAGE_BUILDS_LOCK = Path(os.environ.get("CHANNELWORKS_IMAGE_CACHE") or CACHE / "images") / ".lock"


def test_the_documented_commands_are_the_ones_this_test_runs() -> None:
    assert install.documented_commands(install.INSTALL_MARKER) == [
        "scripts/build-wheels.sh",
        "python3 -m venv ~/venvs/my-app",
        ". ~/venvs/my-app/bin/activate",
        "python -m pip install dist/*.whl",
        "channelworks --help",
    ]
    url = "URL"
    assert install.documented_commands(install.GIT_MARKER) == [
        "python3 -m venv ~/venvs/my-app",
        ". ~/venvs/my-app/bin/activate",
        f'python -m pip install "channelworks[kube] @ git+{url}#subdirectory=consumers_sdk" '
        f'"channelworks-interface @ git+{url}#subdirectory=images/interface" '
        f'"channelworks-worker @ git+{url}#subdirectory=images/worker"',
        "channelworks --help",
    ]


# The fixtures of this module are session-scoped, not module-scoped: a module-scoped fixture
# puts the module's tests in one pytest-xdist group (tests/support/markers.py), and the three
# installs, a minute each, would then run one after the other on one worker.
@pytest.fixture(scope="session")
def third_party_wheelhouse(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The locked third-party wheels, copied out of build/images/ under the image builds' lock:
    each run of build-images.sh empties build/images/ first, and the image tests run it too (on
    another worker under pytest-xdist), which would pull the wheels from under an install. One
    copy for the whole run, whichever workers its installs run on."""

    def copy_the_wheels(copy: Path) -> None:
        done = subprocess.run(
            [str(REPO / "scripts" / "build-images.sh"), "--wheelhouse-only"],
            capture_output=True,
            text=True,
            timeout=install.INSTALL_SECONDS,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        with IMAGE_BUILDS_LOCK.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
            shutil.copytree(install.THIRD_PARTY_WHEELHOUSE, copy, dirs_exist_ok=True)

    return made_once(pytestconfig, tmp_path_factory, "third-party-wheels", copy_the_wheels)


@pytest.fixture(scope="session")
def plain_env(third_party_wheelhouse: Path) -> dict[str, str]:
    return install.plain_env(third_party_wheelhouse)


def run_command(
    command: Path, *args: str, cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(command), *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def serves_the_page(
    command: Path, project: Path, log_dir: Path, env: Mapping[str, str]
) -> tuple[str, str]:
    """Run ``channelworks dev`` for ``project``; the reconnecting client script it serves, and
    the command's log."""
    port = processes.free_port()
    argv = [str(command), "dev", "--port", str(port), "--no-reload"]
    with devmode.running("dev", argv, log_dir, project, PATH=env["PATH"]) as dev:
        url = dev.wait_for_url()
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200, page.text
        # The page's reconnecting client is the channelworks app's static file, in the wheel.
        script = re.search(r'<script src="([^"]+websocketbridge\.js)"', page.text)
        assert script is not None, page.text
        client = httpx.get(url.rstrip("/") + script.group(1), timeout=30)
        # What serves it runs on the venv's Python, not the workspace's.
        pythons = {child.cmdline()[0] for child in dev.descendants()}
    assert client.status_code == 200
    assert pythons == {str(command.parent / "python")}, pythons
    return client.text, dev.log()


def test_the_documented_install_serves_a_new_project_with_dev(
    tmp_path: Path, plain_env: dict[str, str]
) -> None:
    venv = tmp_path / "venvs" / "my-app"
    # dist/ is this folder's: the wheels are built into it.
    printed = install.install_as_documented(tmp_path, venv, plain_env)
    assert install.listed_commands(printed) == ["dev", "init", "build", "manifest", "status"]
    command = venv / "bin" / "channelworks"
    assert command.is_file()
    # The install skipped compiling, as said above (a module nothing here imports: no run wrote it).
    assert not install.compiled(venv, plain_env, "django", "contrib/gis/gdal/raster/band.py")

    made = run_command(command, "init", "my_app", cwd=tmp_path, env=plain_env)
    assert made.returncode == 0, made.stderr
    project = Path(made.stdout.strip())
    assert f"next: cd {project} && channelworks dev" in made.stderr
    # The new project's README: its requirements install in that venv, its tests pass there.
    readme = (project / "README.md").read_text()
    assert "`python -m pip install -r requirements.txt`" in readme
    activate = f". {shlex.quote(str(venv / 'bin' / 'activate'))}"
    own = install.shell(
        f"{activate}\npython -m pip install -r requirements.txt\npython manage.py test --noinput",
        project,
        plain_env,
    )
    assert own.returncode == 0, own.stdout + own.stderr
    assert "Ran 3 tests" in own.stderr and "\nOK" in own.stderr

    # A model with a migration, as the walk-through goes on: dev warns until it is
    # applied, as runserver does; the build context carries the migration, not the database.
    notes = project / "my_app" / "notes"
    (notes / "migrations").mkdir(parents=True)
    (notes / "__init__.py").write_text("")
    (notes / "migrations" / "__init__.py").write_text("")
    (notes / "models.py").write_text(NOTES_MODELS)
    with (project / "my_app" / "settings.py").open("a") as settings:
        settings.write('\nINSTALLED_APPS += ["my_app.notes"]\n')
    made_migration = install.shell(
        f"{activate}\npython manage.py makemigrations notes", project, plain_env
    )
    assert made_migration.returncode == 0, made_migration.stdout + made_migration.stderr
    _, log = serves_the_page(command, project, tmp_path, plain_env)
    assert "unapplied migrations for app(s): auth, contenttypes, notes, sessions" in log, log
    migrated = install.shell(f"{activate}\npython manage.py migrate --noinput", project, plain_env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    client, log = serves_the_page(command, project, tmp_path, plain_env)
    assert "WebSocketBridge" in client
    assert "unapplied migrations" not in log

    context = run_command(command, "build", "--context-only", cwd=project, env=plain_env)
    assert context.returncode == 0, context.stderr
    app = Path(context.stdout.strip()) / "app"
    assert (app / "my_app" / "notes" / "migrations" / "0001_initial.py").is_file()
    assert (project / "db.sqlite3").is_file() and not (app / "db.sqlite3").exists()
    manifest = run_command(command, "manifest", cwd=project, env=plain_env)
    assert manifest.returncode == 0, manifest.stderr
    assert "image: localhost/my-app-worker:latest" in manifest.stdout


NOTES_MODELS = """from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
"""


@pytest.fixture(scope="session")
def build_backend() -> Path:
    """The build backend of our packages (hatchling and what it needs), downloaded once into the
    cache: pip builds the packages it installs from Git in an isolated environment."""
    folder = CACHE / "build-backend"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        downloader = folder.parent / "build-backend-pip"
        steps = [
            [str(BASE_PYTHON), "-m", "venv", str(downloader)],
            [
                str(downloader / "bin" / "python"),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--dest",
                str(folder),
                "hatchling",
            ],
        ]
        for step in steps:
            done = subprocess.run(
                step, capture_output=True, text=True, timeout=install.INSTALL_SECONDS, check=False
            )
            assert done.returncode == 0, done.stdout + done.stderr
        (folder / ".complete").touch()
    return folder


def repository_of_this_checkout(folder: Path) -> Path:
    """A Git repository with one commit of this checkout's files (tracked and new, not ignored),
    as the branch a user would install from: the test installs the code as it is now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # not a file deleted but still in the index
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    identity = ["-c", "user.name=test", "-c", "user.email=test@localhost"]
    for step in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-q", "-m", "checkout"]):
        subprocess.run(["git", *step], cwd=folder, capture_output=True, check=True)
    return folder


def test_the_documented_git_install_serves_a_new_project_with_dev(
    tmp_path: Path, plain_env: dict[str, str], build_backend: Path
) -> None:
    venv = tmp_path / "venvs" / "my-app"
    repository = repository_of_this_checkout(tmp_path / "repository")
    script = "\n".join(
        # (pip's requirement parser wants a host in a git+file URL: localhost)
        line.replace("~/venvs/my-app", str(venv)).replace(
            "git+URL", f"git+file://localhost{repository}"
        )
        for line in install.documented_commands(install.GIT_MARKER)
    )
    env = {**plain_env, "PIP_FIND_LINKS": f"{plain_env['PIP_FIND_LINKS']} {build_backend}"}
    installed = install.shell(script, tmp_path, {**env, "HOME": str(tmp_path)})
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert install.listed_commands(installed.stdout) == [
        "dev",
        "init",
        "build",
        "manifest",
        "status",
    ]
    command = venv / "bin" / "channelworks"
    made = run_command(command, "init", "my_app", cwd=tmp_path, env=plain_env)
    assert made.returncode == 0, made.stderr
    client, _ = serves_the_page(command, Path(made.stdout.strip()), tmp_path, plain_env)
    assert "WebSocketBridge" in client


def printed_command(stderr: str, before: str) -> str:
    """The command a message prints: what follows ``before``, up to the docs reference."""
    found = re.search(re.escape(before) + r"(.+?) \(docs/cli\.md#install\)", stderr)
    assert found is not None, stderr
    return found.group(1)


def test_an_sdk_only_uv_venv_is_told_what_to_install_and_the_commands_work(
    tmp_path: Path, plain_env: dict[str, str]
) -> None:
    # A uv venv (no pip) with only the SDK's wheel, as `uv pip install` of it alone leaves it.
    # uv installs from the wheelhouse only: its index is a folder that does not exist (uv has no
    # variable for --no-index; its offline mode still prefers the index's cached versions).
    plain_env = {**plain_env, "UV_DEFAULT_INDEX": f"file://{tmp_path}/no-index"}
    venv = tmp_path / "venvs" / "sdk-only"
    python = venv / "bin" / "python"
    sdk_only = install.shell(
        f"{install.in_a_clone('scripts/build-wheels.sh')}\n"
        f"uv venv --quiet --python {BASE_PYTHON} {venv}\n"
        f"uv pip install --quiet --python {python} dist/channelworks-[0-9]*.whl",
        tmp_path,
        plain_env,
    )
    assert sdk_only.returncode == 0, sdk_only.stdout + sdk_only.stderr
    command = venv / "bin" / "channelworks"

    # status: the Kubernetes client is missing; the printed command installs it.
    status = run_command(command, "status", "my-app", cwd=tmp_path, env=plain_env)
    assert status.returncode == 1
    missing_client = f"the Kubernetes client is not installed for {python}: "
    install_client = printed_command(status.stderr, missing_client)
    assert install_client.startswith(f"uv pip install --python {python} "), install_client
    assert install.shell(install_client, tmp_path, plain_env).returncode == 0
    kubeconfig = tmp_path / "no-such-kubeconfig"
    status = run_command(
        command, "status", "my-app", "--kubeconfig", str(kubeconfig), cwd=tmp_path, env=plain_env
    )
    assert status.returncode == 1 and "Kubernetes client" not in status.stderr, status.stderr
    assert str(kubeconfig) in status.stderr

    # dev: the runtimes are missing; it says so at once, and the printed commands install them.
    made = run_command(command, "init", "my_app", cwd=tmp_path, env=plain_env)
    assert made.returncode == 0, made.stderr
    project = Path(made.stdout.strip())
    port = str(processes.free_port())
    dev = run_command(command, "dev", "--port", port, cwd=project, env=plain_env)
    assert dev.returncode == 1, dev.stdout + dev.stderr
    assert "missing: channelworks-interface, channelworks-worker" in dev.stderr
    assert "serving at" not in dev.stdout
    in_a_clone_run = "in a clone of the Channelworks repository, run "
    install_runtimes = printed_command(dev.stderr, in_a_clone_run)
    assert install_runtimes == (
        f"scripts/build-wheels.sh && uv pip install --python {python} dist/*.whl"
    )
    installed = install.shell(install.in_a_clone(install_runtimes), tmp_path, plain_env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The README's command for a uv venv, with that venv activated.
    activate = f". {shlex.quote(str(venv / 'bin' / 'activate'))}"
    requirements = install.shell(
        f"{activate}\nuv pip install -r requirements.txt", project, plain_env
    )
    assert requirements.returncode == 0, requirements.stdout + requirements.stderr

    client, _ = serves_the_page(command, project, tmp_path, plain_env)
    assert "WebSocketBridge" in client
