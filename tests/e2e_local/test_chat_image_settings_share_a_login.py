"""The chat example's cluster settings (examples/chat/k8s/k8s_settings.py) do what several worker
pods need: the seeding step of examples/chat/k8s/Dockerfile, run here as it runs in the image
build, makes a database with the demo users; each "pod" (a process with a state directory of its
own) starts from a copy of it, and a login made on one pod is accepted by another, with no
database shared between them. Real Django, real sqlite, real processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "chat"
DOCKERFILE = EXAMPLE / "k8s" / "Dockerfile"
IMAGE_SEED_DIR = "/app/seed"
TIMEOUT = 120.0

# One "pod": Django set up with the cluster settings, then the given client steps; prints JSON.
POD_SCRIPT = """
import json, sys
import django
django.setup()
from django.test import Client

step, cookie = sys.argv[1], sys.argv[2]
client = Client(HTTP_HOST="localhost")
if step == "login":
    answer = client.post("/accounts/login/", {"username": "alice", "password": "alice-chat"})
    print(json.dumps({"status": answer.status_code,
                      "session": answer.cookies["sessionid"].value}))
else:
    if cookie:
        client.cookies["sessionid"] = cookie
    answer = client.get("/")
    print(json.dumps({"status": answer.status_code, "location": answer.get("Location", ""),
                      "alice": b"alice" in answer.content}))
"""


def _seed_command(seed_dir: Path) -> str:
    """The Dockerfile's RUN step that seeds the database, aimed at ``seed_dir``."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    (step,) = [line for line in text.splitlines() if "seed_demo" in line]
    assert step.startswith("RUN ")
    return step.removeprefix("RUN ").replace(IMAGE_SEED_DIR, str(seed_dir))


@pytest.fixture(scope="module")
def seed_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    seed_dir = tmp_path_factory.mktemp("seed")
    venv_bin = str(Path(sys.executable).parent)
    done = subprocess.run(
        ["bash", "-c", _seed_command(seed_dir)],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=TIMEOUT,
        env={**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "alice / alice-chat" in done.stdout
    database = seed_dir / "chat.sqlite3"
    assert database.is_file()
    assert (
        not (seed_dir / "chat.sqlite3-wal").exists()
        or not (seed_dir / "chat.sqlite3-wal").stat().st_size
    ), "everything is in the database file the pods copy"
    database.chmod(0o444)  # as in the image: only read at run time
    return database


def _pod(state_dir: Path, seed: Path, step: str, cookie: str = "") -> dict[str, object]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "k8s_settings",
        "PYTHONPATH": f"{EXAMPLE}{os.pathsep}{EXAMPLE / 'k8s'}",
        "CHANNELWORKS_STATE_DIR": str(state_dir),
        "CHAT_SEED_DATABASE": str(seed),
        "DJANGO_DEBUG": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", POD_SCRIPT, step, cookie],
        cwd=state_dir.parent, capture_output=True, text=True, timeout=TIMEOUT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_a_login_on_one_worker_pod_is_valid_on_another(seed_database: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "pod-a" / "state", tmp_path / "pod-b" / "state"
    for state in (first, second):
        state.parent.mkdir()

    logged_in = _pod(first, seed_database, "login")
    assert logged_in["status"] == 302, logged_in
    session = str(logged_in["session"])
    assert re.fullmatch(r"[\w.:-]+", session), "a signed-cookie session"

    page = _pod(second, seed_database, "page", session)
    assert page == {"status": 200, "location": "", "alice": True}, page
    anonymous = _pod(second, seed_database, "page")
    assert anonymous["status"] == 302 and "/accounts/login/" in str(anonymous["location"])

    for state in (first, second):
        assert (state / "chat.sqlite3").is_file(), "each pod has its own copy of the database"
    assert not list(seed_database.parent.glob("*-journal")), "the seed is never written"
