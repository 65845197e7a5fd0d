"""A new Django project as docs/first-app.md makes one, for the real-node suite: the files a user
adds to what ``channelworks init`` wrote (a model with a migration, a consumer that reads and
writes its table, a PostgreSQL database from the environment), and the steps around the
``channelworks`` command that the docs leave to the user's machine (a container engine that has
the worker base image, the built image loaded into the node's containerd).

The project's code is the user's: the SDK's public API and Django, nothing of the test suite.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from e2e.cluster import ROOT, run

NAME = "my_app"  # the package `init` makes; the app's Kubernetes name is my-app
APP = "my-app"
IMAGE = "localhost/my-app-worker:latest"  # what `channelworks build` tags without --tag
NODE_IMAGES = Path(os.environ.get("CHANNELWORKS_E2E_IMAGES") or ROOT / "build" / "node-images")
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
# The PostgreSQL driver's wheels, locked by uv.lock (the chat example's group): the build installs
# them offline, the node has no network.
DATABASE_REQUIREMENT = "psycopg[binary]"

NOTES_MODELS = """from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
"""

# Each text a socket on /notes/ sends is saved as a Note; the answer lists every note saved so far,
# read back from the table.
NOTES_CONSUMERS = """import json
from typing import Any

from my_app.notes.models import Note


def connect(message: Any, **kwargs: Any) -> None:
    message.reply_channel.send({"accept": True})


def receive(message: Any, **kwargs: Any) -> None:
    Note.objects.create(text=message.get("text") or "")
    texts = list(Note.objects.order_by("id").values_list("text", flat=True))
    message.reply_channel.send({"text": json.dumps({"notes": texts})})
"""

NOTES_ROUTES = """channel_routing = [
    route("websocket.connect", notes.connect, path=r"^/notes/$"),
    route("websocket.receive", notes.receive, path=r"^/notes/$"),
"""

# What a user adds to settings.py for a database server, with the credentials from the
# environment (a Secret loaded with spec.django.envFrom, as docs/first-app.md says).
DATABASE_SETTINGS = """
INSTALLED_APPS += ["my_app.notes"]

if os.environ.get("DATABASE_HOST"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ["DATABASE_HOST"],
            "PORT": os.environ.get("DATABASE_PORT", "5432"),
            "NAME": os.environ["DATABASE_NAME"],
            "USER": os.environ["DATABASE_USER"],
            "PASSWORD": os.environ["DATABASE_PASSWORD"],
        }
    }
"""


def add_notes(project: Path) -> None:
    """The model, its consumer and routes, and the database settings, added to ``project``."""
    package = project / NAME
    notes = package / "notes"
    (notes / "migrations").mkdir(parents=True)
    (notes / "__init__.py").write_text("")
    (notes / "migrations" / "__init__.py").write_text("")
    (notes / "models.py").write_text(NOTES_MODELS)
    (notes / "consumers.py").write_text(NOTES_CONSUMERS)
    routing = package / "routing.py"
    text = routing.read_text()
    imports = f"from {NAME} import consumers\n"
    if imports not in text or "channel_routing = [\n" not in text:
        raise AssertionError(f"{routing} changed shape:\n{text}")
    text = text.replace(imports, f"{imports}from {NAME}.notes import consumers as notes\n", 1)
    routing.write_text(text.replace("channel_routing = [\n", NOTES_ROUTES, 1))
    with (package / "settings.py").open("a") as settings:
        settings.write(DATABASE_SETTINGS)
    with (project / "requirements.txt").open("a") as requirements:
        requirements.write(f"{DATABASE_REQUIREMENT}\n")


@dataclass(frozen=True)
class Engine:
    """podman with a storage of its own (the node's /var/lib is not the host's), holding the
    worker base image from the suite's archives, as ``scripts/build-images.sh`` leaves it on a
    user's machine; ``env`` points podman at that storage."""

    folder: Path

    @property
    def env(self) -> dict[str, str]:
        return {"CONTAINERS_STORAGE_CONF": str(self.folder / "storage.conf")}

    @classmethod
    def with_worker_image(cls, folder: Path) -> Engine:
        folder.mkdir(parents=True)
        (folder / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{folder / "root"}"\n'
            f'runroot = "{folder / "run"}"\n'
        )
        engine = cls(folder)
        archive = NODE_IMAGES / "worker.tar"
        if not archive.is_file():
            raise AssertionError(f"{archive}: no such file (e2e/images.sh makes it)")
        engine.podman("load", "--quiet", "--input", str(archive))
        return engine

    def podman(self, *args: str) -> str:
        return run(["podman", *args], env=self.env).stdout

    def build_args(self, wheelhouse: Path) -> list[str]:
        """``channelworks build`` options for this machine: runc, no network, and pip reading
        the locked wheels (a pip.conf and the wheelhouse mounted for the build's RUN steps)."""
        pip_conf = self.folder / "pip.conf"
        pip_conf.write_text("[global]\nno-index = true\nfind-links = /wheels\n")
        return [
            "--engine", "podman",
            "--engine-arg=--runtime=runc",
            "--engine-arg=--network=none",
            f"--engine-arg=--volume={pip_conf}:/etc/pip.conf:ro",
            f"--engine-arg=--volume={wheelhouse}:/wheels:ro",
        ]  # fmt: skip

    def load_into_node(self, image: str) -> None:
        """``image`` saved as a docker-archive and imported into the node's containerd, as
        e2e/images.sh and ``e2e/node.sh import`` do."""
        archive = self.folder / "image.tar"
        self.podman("save", "--quiet", "--format", "docker-archive", "--output", str(archive),
                    image)  # fmt: skip
        ctr = shutil.which("ctr")
        if ctr is None:
            raise AssertionError("ctr (containerd's client) is not on PATH")
        run([ctr, "--address", CONTAINERD_SOCKET, "-n", "k8s.io", "images", "import",
             str(archive)])  # fmt: skip
        archive.unlink()

    def remove(self) -> None:
        """The engine's storage deleted (only this test's: podman's own storage is untouched)."""
        shutil.rmtree(self.folder, ignore_errors=True)
