"""A real, local Kubernetes control plane for tests (the envtest approach, plus a scheduler, a
controller-manager and kwok fake nodes, so workloads behave as on a cluster).

    with ControlPlane() as cp:
        core = kubernetes.client.CoreV1Api(cp.api_client())
        cp.kubectl("get", "nodes")

It runs etcd, kube-apiserver, kube-controller-manager (garbage collection, Deployment →
ReplicaSet → Pod, namespaces, service accounts), kube-scheduler and kwok, which plays the kubelet
of ``nodes`` fake nodes: scheduled pods become Running and Ready, without containers. Every process
listens only on 127.0.0.1 on ports the kernel reports free, runs from one temporary directory
(certificates, kubeconfig, etcd data, one log per process) and is stopped, the directory removed,
on ``stop()``, on leaving the ``with`` block, or at interpreter exit. Clients authenticate with a
bearer token of a ``system:masters`` user; the apiserver serves a certificate from a CA made here.

The binaries come from ``tools/kube/build-binaries.sh``, which builds and caches them. When a
process does not come up, the error carries the tail of its log.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import kubernetes
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tools" / "kube" / "build-binaries.sh"
KUBE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0

_ADMIN = "channelworks-admin"
_POLL_INTERVAL = 0.2
_LOG_TAIL_LINES = 25
_PORT_ATTEMPTS = 3


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, or did not reach the state waited for."""


@dataclass(frozen=True)
class BinDirs:
    """Where ``build-binaries.sh`` caches the Kubernetes binaries and helm."""

    kube: Path
    helm: Path


def bin_dirs() -> BinDirs:
    """Ask the build script (the one place versions are pinned) where its cache is."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dirs"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    kube, helm = done.stdout.split()[:2]  # the first two lines; further lines are the node dirs
    return BinDirs(Path(kube), Path(helm))


def _require(path: Path) -> Path:
    """``path`` if the build script finished building it (its stamp file is there)."""
    if not (os.access(path, os.X_OK) and (path.parent / f".stamp-{path.name}").is_file()):
        raise ControlPlaneError(
            f"{path} is missing: run tools/kube/build-binaries.sh once to build and cache the "
            "test control plane binaries (10 to 40 minutes the first time)"
        )
    return path


def kube_binaries(dirs: BinDirs | None = None) -> dict[str, Path]:
    """Path of each control plane binary, by name; a clear error when one is not built yet."""
    kube_dir = (dirs or bin_dirs()).kube
    return {name: _require(kube_dir / name) for name in KUBE_BINARIES}


def helm_binary(dirs: BinDirs | None = None) -> Path:
    """The pinned ``helm`` built by ``build-binaries.sh``."""
    return _require((dirs or bin_dirs()).helm / "helm")


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


def free_ports() -> Ports:
    """Distinct ports on 127.0.0.1 that nobody listens on right now (the kernel picks them)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(5)]
        for sock in socks:
            sock.bind((HOST, 0))
        return Ports(*(int(sock.getsockname()[1]) for sock in socks))


@dataclass(frozen=True)
class Layout:
    """The files of one control plane, all under ``root``."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.pki / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.pki / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.pki / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.pki / "sa.pub"

    @property
    def tokens(self) -> Path:
        return self.pki / "tokens.csv"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def kwok_workdir(self) -> Path:
        return self.root / "kwok"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, process: str) -> Path:
        return self.logs / f"{process}.log"

    def cert_dir(self, process: str) -> Path:
        return self.root / "certs" / process


def etcd_args(layout: Layout, ports: Ports) -> list[str]:
    client, peer = f"http://{HOST}:{ports.etcd_client}", f"http://{HOST}:{ports.etcd_peer}"
    return [
        "--name=test", f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=test={peer}", "--unsafe-no-fsync", "--log-level=warn",
    ]  # fmt: skip


def apiserver_args(layout: Layout, ports: Ports) -> list[str]:
    return [
        f"--etcd-servers=http://{HOST}:{ports.etcd_client}",
        f"--bind-address={HOST}", f"--advertise-address={HOST}",
        f"--secure-port={ports.apiserver}", f"--cert-dir={layout.cert_dir('kube-apiserver')}",
        f"--tls-cert-file={layout.serving_cert}", f"--tls-private-key-file={layout.serving_key}",
        f"--client-ca-file={layout.ca_cert}", f"--token-auth-file={layout.tokens}",
        # Published for the controller-manager's and scheduler's delegated authentication.
        f"--requestheader-client-ca-file={layout.ca_cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={layout.sa_pub}",
        f"--service-account-signing-key-file={layout.sa_key}",
        "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
        # The Endpoints of the `kubernetes` Service may not hold a loopback address.
        "--endpoint-reconciler-type=none", "--profiling=false",
    ]  # fmt: skip


def _component_args(layout: Layout, name: str, port: int) -> list[str]:
    kubeconfig = layout.kubeconfig
    return [
        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}", "--leader-elect=false",
        f"--bind-address={HOST}", f"--secure-port={port}", f"--cert-dir={layout.cert_dir(name)}",
    ]  # fmt: skip


def controller_manager_args(layout: Layout, ports: Ports) -> list[str]:
    return [
        *_component_args(layout, "kube-controller-manager", ports.controller_manager),
        f"--service-account-private-key-file={layout.sa_key}",
        f"--root-ca-file={layout.ca_cert}",
        "--cluster-name=channelworks-test",
        "--profiling=false",
    ]


def scheduler_args(layout: Layout, ports: Ports) -> list[str]:
    return [*_component_args(layout, "kube-scheduler", ports.scheduler), "--profiling=false"]


def kwok_args(layout: Layout) -> list[str]:
    return [
        f"--kubeconfig={layout.kubeconfig}", "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
        "--node-lease-duration-seconds=40",
    ]  # fmt: skip


def kubeconfig(server: str, ca_file: Path, token: str) -> dict[str, Any]:
    """A kubeconfig document with one context, ``channelworks-test``, and a bearer token."""
    name = "channelworks-test"
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": name, "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server,
                                                "certificate-authority": str(ca_file)}}],
        "users": [{"name": _ADMIN, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": _ADMIN}}],
    }  # fmt: skip


def fake_node(name: str) -> dict[str, Any]:
    """A Node that kwok manages: no taints, so every pod may land on it; room for many pods."""
    resources = {"cpu": "64", "memory": "256Gi", "pods": "500", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name, "annotations": {KWOK_NODE_ANNOTATION: "fake"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                       "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
        },
        "status": {"allocatable": resources, "capacity": resources},
    }  # fmt: skip


def node_problem(node: Mapping[str, Any]) -> str | None:
    """Why a node cannot take pods yet (not Ready, still tainted), or None when it can."""
    conditions = node.get("status", {}).get("conditions") or []
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return "not Ready"
    taints = node.get("spec", {}).get("taints") or []
    return f"tainted {[t.get('key') for t in taints]}" if taints else None


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _write_pki(layout: Layout, token: str) -> None:
    ca = trustme.CA(organization_name="channelworks-test")
    serving = ca.issue_cert(HOST, "localhost", common_name="kube-apiserver")
    ca.cert_pem.write_to_path(str(layout.ca_cert))
    serving.cert_chain_pems[0].write_to_path(str(layout.serving_cert))
    serving.private_key_pem.write_to_path(str(layout.serving_key))
    sa_key = ec.generate_private_key(ec.SECP256R1())
    layout.sa_key.write_bytes(
        sa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    layout.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    layout.tokens.write_text(f'{token},{_ADMIN},{_ADMIN},"system:masters"\n')
    for path in (layout.serving_key, layout.sa_key, layout.tokens):
        path.chmod(0o600)


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with fake nodes."""

    def __init__(
        self,
        *,
        nodes: int = 1,
        startup_timeout: float = STARTUP_TIMEOUT,
        binaries: Mapping[str, Path] | None = None,
    ) -> None:
        self.node_names = [f"kwok-node-{i}" for i in range(nodes)]
        self.startup_timeout = startup_timeout
        self._binaries = dict(binaries) if binaries is not None else None
        self._root: Path | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self.token = secrets.token_urlsafe(32)
        self.ports: Ports | None = None

    # -- what a test uses ----------------------------------------------------------------------

    @property
    def layout(self) -> Layout:
        if self._root is None:
            raise ControlPlaneError("the control plane is not started")
        return Layout(self._root)

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig file (context ``channelworks-test``, full admin rights)."""
        return self.layout.kubeconfig

    @property
    def server(self) -> str:
        if self.ports is None:
            raise ControlPlaneError("the control plane is not started")
        return f"https://{HOST}:{self.ports.apiserver}"

    @property
    def ca_file(self) -> Path:
        return self.layout.ca_cert

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new ``kubernetes.client.ApiClient`` configured from the kubeconfig file."""
        new_client = cast(  # the library leaves it unannotated
            Callable[..., kubernetes.client.ApiClient], kubernetes.config.new_client_from_config
        )
        return new_client(config_file=str(self.kubeconfig))

    def environ(self) -> dict[str, str]:
        """``os.environ`` plus ``KUBECONFIG``: for subprocesses (the operator, kubectl, helm)."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl`` against this control plane; raises on a non-zero exit."""
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise ControlPlaneError("kubectl is not installed")
        command = [kubectl, f"--kubeconfig={self.kubeconfig}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ControlPlaneError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done

    @property
    def pids(self) -> dict[str, int]:
        """The process id of each component started, by name (``etcd``, ``kwok``, ...)."""
        return {name: process.pid for name, process in self._processes.items()}

    def log(self, process: str) -> str:
        """The tail of one process's log (``kube-apiserver``, ``kwok``, ...)."""
        return log_tail(self.layout.log(process))

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()

    def start(self) -> Self:
        """Start everything and wait until the apiserver is ready and every node takes pods."""
        if self._root is not None:
            raise ControlPlaneError("the control plane is already started")
        binaries = self._binaries if self._binaries is not None else kube_binaries()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                self._start(binaries)
                return self
            except ControlPlaneError as error:
                self.stop()
                if "address already in use" not in str(error) or attempt == _PORT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop every process (TERM, then KILL) in reverse order and remove the directory."""
        for name, process in reversed(list(self._processes.items())):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(STOP_TIMEOUT)
            self._processes.pop(name)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        self.ports = None
        atexit.unregister(self.stop)

    def _start(self, binaries: Mapping[str, Path]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        atexit.register(self.stop)
        self._root = Path(tempfile.mkdtemp(prefix="channelworks-kube-"))
        layout, ports = self.layout, free_ports()
        self.ports = ports
        for directory in (layout.pki, layout.logs, layout.kwok_workdir):
            directory.mkdir(parents=True)
        _write_pki(layout, self.token)
        document = kubeconfig(self.server, layout.ca_cert, self.token)
        layout.kubeconfig.write_text(json.dumps(document, indent=2))
        layout.kubeconfig.chmod(0o600)

        self._spawn("etcd", binaries, etcd_args(layout, ports))
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        etcd_health = f"http://{HOST}:{ports.etcd_client}/health"
        self._wait(deadline, "etcd", functools.partial(_http_problem, etcd_health))
        self._spawn("kube-apiserver", binaries, apiserver_args(layout, ports))
        trusted = ssl.create_default_context(cafile=str(layout.ca_cert))
        auth = {"Authorization": f"Bearer {self.token}"}
        self._wait(
            deadline, "kube-apiserver",
            lambda: _http_problem(f"{self.server}/readyz", trusted, auth),
        )  # fmt: skip
        self._spawn("kube-controller-manager", binaries, controller_manager_args(layout, ports))
        self._spawn("kube-scheduler", binaries, scheduler_args(layout, ports))
        self._spawn("kwok", binaries, kwok_args(layout), {"KWOK_WORKDIR": str(layout.kwok_workdir)})
        for name, port in (
            ("kube-controller-manager", ports.controller_manager),
            ("kube-scheduler", ports.scheduler),
        ):
            url = f"https://{HOST}:{port}/healthz"
            self._wait(deadline, name, functools.partial(_http_problem, url, insecure))
        for node in self.node_names:
            problem = _http_problem(f"{self.server}/api/v1/nodes", trusted, auth, fake_node(node))
            if problem is not None:
                raise ControlPlaneError(f"failed to create node {node}: {problem}")
        for node in self.node_names:
            url = f"{self.server}/api/v1/nodes/{node}"
            self._wait(deadline, "kwok", functools.partial(_node_problem, url, trusted, auth))

    def _spawn(
        self, name: str, binaries: Mapping[str, Path], args: Sequence[str],
        env: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        command = [str(binaries[name]), *args]
        # setpriv makes the kernel kill the process if the test process dies without cleaning up.
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            command = [setpriv, "--pdeathsig=KILL", "--", *command]
        with self.layout.log(name).open("ab") as log:
            self._processes[name] = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.layout.root, env={**os.environ, **(env or {})},
            )  # fmt: skip

    def _wait(self, deadline: float, name: str, problem: Callable[[], str | None]) -> None:
        """Poll ``problem`` until it is None; fail, with log tails, if anything exits or stalls."""
        while True:
            for process_name, process in self._processes.items():
                if process.poll() is not None:
                    raise self._failure(process_name, f"exited with code {process.returncode}")
            last = problem()
            if last is None:
                return
            if time.monotonic() >= deadline:
                raise self._failure(name, f"not ready within {self.startup_timeout:.0f}s: {last}")
            time.sleep(_POLL_INTERVAL)

    def _failure(self, name: str, what: str) -> ControlPlaneError:
        tails = "".join(
            f"\n--- last lines of {process}.log ---\n{self.log(process)}"
            for process in self._processes
            if process == name or self._processes[process].poll() is not None
        )
        return ControlPlaneError(f"{name} {what}{tails}")


def _http_problem(
    url: str, context: ssl.SSLContext | None = None, headers: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> str | None:  # fmt: skip
    """None when a GET (or a POST of ``body``) succeeds, else what went wrong."""
    return _http_json(url, context, headers, body)[0]


def _node_problem(url: str, context: ssl.SSLContext, headers: Mapping[str, str]) -> str | None:
    problem, node = _http_json(url, context, headers)
    return problem or node_problem(node)


def _http_json(
    url: str, context: ssl.SSLContext | None = None, headers: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> tuple[str | None, dict[str, Any]]:  # fmt: skip
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={**(headers or {})})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            text = response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[-300:]
        return f"{url}: HTTP {error.code}: {detail}", {}
    except (OSError, ValueError) as error:
        return f"{url}: {error}", {}
    try:
        document = json.loads(text)
    except ValueError:
        return None, {}
    return None, document if isinstance(document, dict) else {}
