"""A new Django project, from nothing to a working app on the real node, following only the docs
(issue 14's "Done when"): the install of docs/cli.md (``scripts/build-wheels.sh``, a plain
``python3 -m venv``, ``python -m pip install dist/*.whl``), ``channelworks init``, ``channelworks
dev`` serving its page, a model with a migration (``makemigrations``) and a consumer that uses
its table, ``channelworks build`` (podman), the image loaded into the node, ``channelworks
manifest`` with a database Secret added as docs/first-app.md says, ``kubectl apply``. Then, in the
cluster: the operator's Job migrated the database before any pod ran, the app is Ready, its page
answers through the Service with DEBUG off, a static file comes with its caching headers, a
WebSocket writes and reads the model's table, and ``kubectl get rtapp`` shows it.

What the test does as a user would not: the wheels and the venv go to a temporary folder, pip and
the image build read the locked third-party wheels (build/images/wheels/third-party, filled by
e2e/images.sh) with no index, since nothing inside the node reaches the network; podman uses a
storage of its own with the worker base image from the suite's archives (the node's /var/lib is
not the host's); and the database is the chat recipe's PostgreSQL manifest, in the app's
namespace. Needs the real node (``e2e/run-on-node.sh``): the image goes into its containerd.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shlex
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from websockets.asyncio.client import connect

from e2e.chat_clients import ChatAddress
from e2e.cluster import Cluster, Images, Release, wait_until
from e2e.conftest import database_manifests
from e2e.new_project import APP, IMAGE, NAME, Engine, add_notes
from tests.cli import install
from tests.dataplane import devmode, processes
from tests.support.kubectl_tables import printed_columns

READY_TIMEOUT = 300.0
DATABASE_SECRET = "chat-database"  # examples/chat/k8s/postgres.yaml's Secret and Deployment
DATABASE_DEPLOYMENT = "chat-postgres"
STATIC_FILE = "/static/channels/js/websocketbridge.js"


@dataclass(frozen=True)
class NewApp:
    namespace: str
    project: Path
    venv: Path  # where docs/cli.md's install put `channelworks`
    dev_page: str  # the page `channelworks dev` served

    @property
    def address(self) -> ChatAddress:
        """The interface Service by its cluster DNS name, as the chat tests reach theirs."""
        return ChatAddress(f"{APP}-interface.{self.namespace}.svc.cluster.local")


def node_only() -> None:
    if not os.environ.get("CHANNELWORKS_NODE_NAME"):
        pytest.skip("the built image is imported into the real node's containerd: run it with "
                    "e2e/run-on-node.sh")  # fmt: skip


def venv_run(venv: Path, script: str, cwd: Path, env: dict[str, str]) -> str:
    """``script`` in a shell with ``venv`` activated, as the docs' commands run."""
    activate = f". {shlex.quote(str(venv / 'bin' / 'activate'))}"
    done = install.shell(f"{activate}\n{script}", cwd, env)
    assert done.returncode == 0, f"{script}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def dev_serves_the_page(venv: Path, project: Path, log_dir: Path, env: dict[str, str]) -> str:
    """``channelworks dev`` of the venv serves the project's page; its text."""
    argv = [str(venv / "bin" / "channelworks"), "dev", "--port", str(processes.free_port()),
            "--no-reload"]  # fmt: skip
    with devmode.running("dev", argv, log_dir, project, PATH=env["PATH"]) as dev:
        page = httpx.get(dev.wait_for_url(), timeout=30)
    assert page.status_code == 200, page.text
    return page.text


def database(images: Images) -> str:
    """The chat recipe's PostgreSQL (Secret, Service, Deployment) with the node's image, its
    Secret holding only the database's settings (the operator gives the SECRET_KEY)."""
    documents = list(yaml.safe_load_all(database_manifests(images)))
    for document in documents:
        if document["kind"] == "Secret":
            document["stringData"].pop("DJANGO_SECRET_KEY", None)
    return yaml.safe_dump_all(documents)


def with_database(printed: str) -> dict[str, Any]:
    """The manifest ``channelworks manifest`` printed, with what docs/first-app.md says a real
    deployment adds: the database credentials from a Secret (``spec.django.envFrom``)."""
    manifest: dict[str, Any] = yaml.safe_load(printed)
    manifest["spec"]["django"]["envFrom"] = [{"secretRef": {"name": DATABASE_SECRET}}]
    return manifest


@pytest.fixture(scope="module")
def new_app(
    cluster: Cluster, release: Release, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NewApp]:
    node_only()
    wheelhouse = install.THIRD_PARTY_WHEELHOUSE
    assert wheelhouse.is_dir(), f"{wheelhouse}: no such folder (e2e/images.sh fills it)"
    folder = tmp_path_factory.mktemp("new-project")
    # Nothing in the node reaches the network: uv builds the wheels with the build backend in
    # its cache (the user's, though the install runs with HOME in the temporary folder), found
    # as uv finds it: UV_CACHE_DIR, else XDG_CACHE_HOME/uv, else ~/.cache/uv.
    uv_cache = Path(
        os.environ.get("UV_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "uv"
    )
    env = {**install.plain_env(wheelhouse), "UV_OFFLINE": "1", "UV_CACHE_DIR": str(uv_cache)}
    venv = folder / "venvs" / "my-app"
    namespace = f"new-project-e2e-{secrets.token_hex(3)}"
    steps: dict[str, float] = {}
    started = time.monotonic()
    # While the install runs: the database starts (it must answer before the app is applied:
    # its migration Job runs once) and the engine loads the worker base image.
    cluster.kubectl("create", "namespace", namespace)
    loading = ThreadPoolExecutor(1)
    engine_loaded = loading.submit(Engine.with_worker_image, folder / "podman")
    try:
        cluster.apply(namespace, database(images))
        printed = install.install_as_documented(folder, venv, env)
        assert "manifest" in install.listed_commands(printed)
        steps["install"] = time.monotonic() - started
        made = venv_run(venv, f"channelworks init {NAME}", folder, env)
        project = Path(made.strip())
        dev_page = dev_serves_the_page(venv, project, folder, env)
        add_notes(project)
        venv_run(venv, "python manage.py makemigrations notes", project, env)
        assert (project / NAME / "notes" / "migrations" / "0001_initial.py").is_file()
        steps["init, dev, model"] = time.monotonic() - started

        engine = engine_loaded.result()
        build = shlex.join(["channelworks", "build", *engine.build_args(wheelhouse)])
        built = venv_run(venv, build, project, {**env, **engine.env})
        assert built.strip().splitlines()[-1] == IMAGE, built
        engine.load_into_node(IMAGE)
        steps["build, load"] = time.monotonic() - started

        printed = venv_run(venv, f"channelworks manifest -n {namespace} --layer standalone "
                           "--interface-replicas 1 --max-workers 2", project, env)  # fmt: skip
        cluster.kubectl("rollout", "status", f"deployment/{DATABASE_DEPLOYMENT}", "-n", namespace,
                        "--timeout=180s")  # fmt: skip
        cluster.apply(namespace, yaml.safe_dump(with_database(printed)))

        def ready() -> tuple[bool, Any]:
            status = cluster.get("rtapp", APP, namespace).get("status") or {}
            return status.get("phase") == "Ready", status

        wait_until(f"RealtimeApp {APP} Ready", ready, READY_TIMEOUT,
                   lambda: cluster.problems(namespace))  # fmt: skip
        steps["apply, Ready"] = time.monotonic() - started
        print(f"new project on the node, seconds since the start: {steps}")
        yield NewApp(namespace, project, venv, dev_page)
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
        loading.shutdown()
        Engine(folder / "podman").remove()


def test_dev_served_the_new_projects_page(new_app: NewApp) -> None:
    assert f"<h1>{NAME}</h1>" in new_app.dev_page
    assert "websocketbridge.js" in new_app.dev_page


def test_the_operator_migrated_the_database_before_the_app_ran(
    cluster: Cluster, new_app: NewApp
) -> None:
    status = cluster.get("rtapp", APP, new_app.namespace)["status"]
    migration = status["migration"]
    assert (migration["state"], migration["releasedImage"]) == ("Succeeded", IMAGE), migration
    (migrated,) = [c for c in status["conditions"] if c["type"] == "Migrated"]
    assert migrated["status"] == "True", migrated
    job = cluster.get("job", migration["job"], new_app.namespace)
    worker = cluster.get("deployment", f"{APP}-worker", new_app.namespace)
    assert worker["metadata"]["creationTimestamp"] >= job["status"]["completionTime"]
    # The model's table is in the database, made by the migration the project carries.
    tables = cluster.kubectl(
        "exec", "-n", new_app.namespace, f"deployment/{DATABASE_DEPLOYMENT}", "--",
        "psql", "-U", "chat", "-d", "chat", "-Atc", "select name from django_migrations "
        "where app = 'notes'",
    ).stdout  # fmt: skip
    assert tables.split() == ["0001_initial"], tables


def test_the_page_and_its_static_files_are_served_without_debug(new_app: NewApp) -> None:
    with httpx.Client(base_url=new_app.address.base, timeout=30) as client:
        page = client.get("/")
        assert page.status_code == 200, page.text[:2000]
        assert f"<h1>{NAME}</h1>" in page.text
        # DEBUG off: Django's plain 404, not the technical page that lists the URLconf.
        missing = client.get("/no-such-page/")
        assert missing.status_code == 404
        assert "URLconf" not in missing.text, missing.text[:2000]
        # ALLOWED_HOSTS: the Service's names, not any host.
        assert client.get("/", headers={"Host": "evil.example"}).status_code == 400

        static = client.get(STATIC_FILE)
        assert static.status_code == 200, static.text[:2000]
        assert "WebSocketBridge" in static.text
        assert static.headers["cache-control"] == "public, max-age=3600", static.headers
        modified = static.headers["last-modified"]
        again = client.get(STATIC_FILE, headers={"If-Modified-Since": modified})
        assert again.status_code == 304, again.headers


async def save_note(url: str, text: str) -> list[str]:
    """Send ``text`` on a new socket; the notes the consumer read back from the table."""
    async with connect(url, open_timeout=30) as socket:
        await socket.send(text)
        answer = json.loads(await asyncio.wait_for(socket.recv(), 30))
    notes: list[str] = answer["notes"]
    return notes


def test_a_websocket_writes_and_reads_the_models_table(new_app: NewApp) -> None:
    url = f"ws://{new_app.address.host}:{new_app.address.port}/notes/"
    first, second = f"first {time.time_ns()}", f"second {time.time_ns()}"
    assert asyncio.run(save_note(url, first))[-1:] == [first]
    # Another connection (any worker) reads what the first one wrote.
    assert asyncio.run(save_note(url, second))[-2:] == [first, second]


def test_kubectl_get_rtapp_shows_the_app(cluster: Cluster, new_app: NewApp) -> None:
    listed = cluster.kubectl("get", "rtapp", "-n", new_app.namespace).stdout.splitlines()
    assert listed[0].split() == ["NAME", "READY", "INTERFACE", "WORKERS", "QUEUE", "AGE"]
    assert listed[1].split()[:5] == [APP, "True", "1/1", "1/1", "0"], listed
    wide = cluster.kubectl("get", "rtapp", APP, "-n", new_app.namespace, "-o", "wide").stdout
    columns = printed_columns(wide)
    assert columns["PHASE"] == "Ready" and columns["MIGRATION"] == "Succeeded", wide
    assert columns["LAYER"] == "standalone", wide
    # Without interface autoscaling the operator does not read the interface pods: DRAINING is
    # left blank, as docs/operator.md says.
    assert columns["DRAINING"] == "", wide


def test_the_secret_key_comes_from_the_secret_the_operator_made(
    cluster: Cluster, new_app: NewApp
) -> None:
    # The settings refuse to start without DEBUG and DJANGO_SECRET_KEY: the page served above
    # had one; it is the random key of the Secret the operator made, loaded first.
    secret = cluster.get("secret", f"{APP}-secret-key", new_app.namespace)
    assert len(base64.b64decode(secret["data"]["DJANGO_SECRET_KEY"])) >= 32
    worker = cluster.get("deployment", f"{APP}-worker", new_app.namespace)
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"][0] == {"secretRef": {"name": f"{APP}-secret-key"}}


def channelworks_status(cluster: Cluster, new_app: NewApp, name: str) -> list[str]:
    """``channelworks status NAME`` of the venv, with the node's kubeconfig."""
    done = subprocess.run(
        [str(new_app.venv / "bin" / "channelworks"), "status", name, "-n", new_app.namespace,
         "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_channelworks_status_summarises_the_app(cluster: Cluster, new_app: NewApp) -> None:
    lines = channelworks_status(cluster, new_app, APP)
    assert lines[0] == f"RealtimeApp {new_app.namespace}/{APP}: Ready", lines
    assert f"  image       {IMAGE}" in lines
    assert f"  endpoint    {APP}-interface.{new_app.namespace}.svc:8000" in lines
    assert "  interface   1/1 ready" in lines
    assert "  layer       standalone, 1/1 Redis nodes ready" in lines
    assert not [line for line in lines if line.startswith("    why")], lines


def test_channelworks_status_says_why_redis_is_not_ready(cluster: Cluster, new_app: NewApp) -> None:
    # A second app whose Redis claims a StorageClass the node does not have (issue 14, point 7).
    name = f"{APP}-no-storage"
    manifest = yaml.safe_load(
        cluster.kubectl("get", "rtapp", APP, "-n", new_app.namespace, "-o", "yaml").stdout
    )
    spec = manifest["spec"]
    spec["channelLayer"]["redis"]["storage"] = {"storageClassName": "no-such-class"}
    spec["django"]["migrate"] = {"enabled": False}
    made = {"apiVersion": manifest["apiVersion"], "kind": manifest["kind"],
            "metadata": {"name": name}, "spec": spec}  # fmt: skip
    cluster.apply(new_app.namespace, yaml.safe_dump(made))
    try:

        def explained() -> tuple[bool, Any]:
            lines = channelworks_status(cluster, new_app, name)
            why = [line.strip() for line in lines if line.startswith("    why")]
            return bool(why), lines

        lines = wait_until(f"status of {name} says why", explained, 120)
        assert "  layer       standalone, 0/1 Redis nodes ready" in lines, lines
        (why,) = [line.strip() for line in lines if line.startswith("    why")]
        assert why.startswith(f"why       volume claim data-{name}-redis-0 is Pending: "), why
        assert "no StorageClass 'no-such-class' in the cluster" in why, why
    finally:
        cluster.kubectl("delete", "rtapp", name, "-n", new_app.namespace, "--wait=false")
