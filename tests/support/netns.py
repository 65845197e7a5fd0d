"""Network namespaces for tests: real addresses whose packets can be made to go unanswered.

On a pod network a pod that vanished does not refuse connections, as a closed loopback port
does: its packets simply go unanswered. A ``Namespace`` gives a test such an address. It is a
network namespace of its own, joined to the test's by a veth pair with a private /30 (in
10.250.0.0/16, only on this machine); servers started with ``launcher`` run inside it and listen
on ``address``, which the test reaches over the veth pair. ``blackhole(port)`` drops every
packet to and from that port on the veth (iptables, inside the namespace), so a peer that talks
to it hears nothing, and ``restore(port)`` undoes it::

    with Namespace() as namespace:
        server = start_something(bind=namespace.address, prefix=namespace.launcher)
        namespace.blackhole(server.port)

Leaving the block (or the interpreter) kills what still runs inside and deletes the namespace
and its veth pair, also after a failure. Needs root (``Namespace.unavailable()`` says why not).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess
from types import TracebackType
from typing import Self

_NETWORK = ipaddress.ip_network("10.250.0.0/16")
_ATTEMPTS = 20
_TIMEOUT = 10.0


class NamespaceError(RuntimeError):
    """A namespace could not be made, or a command in it failed."""


def _run(*command: str) -> str:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise NamespaceError(f"{' '.join(command)} timed out") from error
    if done.returncode != 0:
        raise NamespaceError(f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def _addresses_in_use() -> str:
    return _run("ip", "-o", "addr", "show")


class Namespace:
    """A network namespace joined to ours by a veth pair; see the module docstring."""

    def __init__(self) -> None:
        token = secrets.token_hex(3)
        self.name = f"cw-test-{token}"
        self._outside_link = f"cwo{token}"  # interface names: at most 15 characters
        self.inside_link = f"cwi{token}"
        self.address = ""
        self.outside_address = ""
        self._made = False
        self._rules: list[tuple[str, ...]] = []

    @staticmethod
    def unavailable() -> str | None:
        """Why namespaces cannot be made here (not root, no ``ip``/``iptables``), or None."""
        if os.geteuid() != 0:
            return "network namespaces need root (CI runs the tests as root)"
        for tool in ("ip", "iptables"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed"
        return None

    @property
    def launcher(self) -> tuple[str, ...]:
        """The command prefix that runs a process inside the namespace."""
        return ("ip", "netns", "exec", self.name)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> Self:
        problem = self.unavailable()
        if problem is not None:
            raise NamespaceError(problem)
        outside, inside = self._free_subnet()
        atexit.register(self.close)
        self._made = True
        try:
            _run("ip", "netns", "add", self.name)
            _run(
                "ip", "link", "add", self._outside_link, "type", "veth",
                "peer", "name", self.inside_link,
            )  # fmt: skip
            _run("ip", "link", "set", self.inside_link, "netns", self.name)
            _run("ip", "addr", "add", f"{outside}/30", "dev", self._outside_link)
            _run("ip", "link", "set", self._outside_link, "up")
            self.run("ip", "addr", "add", f"{inside}/30", "dev", self.inside_link)
            self.run("ip", "link", "set", self.inside_link, "up")
            self.run("ip", "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        self.outside_address, self.address = outside, inside
        return self

    def run(self, *command: str) -> str:
        """Run one command inside the namespace and return what it printed."""
        return _run(*self.launcher, *command)

    def blackhole(self, port: int) -> None:
        """Drop every TCP packet to and from ``port`` that crosses the veth pair: whoever talks
        to it from outside hears nothing, as from a pod that vanished."""
        inbound = ("-i", self.inside_link, "-p", "tcp", "--dport", str(port))
        for rule in (
            ("INPUT", *inbound, "--syn", "-j", "DROP"),  # its own counter: connection attempts
            ("INPUT", *inbound, "-j", "DROP"),
            ("OUTPUT", "-o", self.inside_link, "-p", "tcp", "--sport", str(port), "-j", "DROP"),
        ):
            self.run("iptables", "-A", *rule)
            self._rules.append(rule)

    def silence_connections(self, port: int) -> list[int]:
        """Drop every packet of the connections made so far from outside to ``port`` (new
        connections pass): what a client sees behind a Service address whose pod was
        replaced. Returns the client ports silenced."""
        listing = _run(
            "ss", "-tnH", "state", "established", f"( dst {self.address} and dport = :{port} )"
        )
        client_ports = [int(line.split()[2].rsplit(":", 1)[1]) for line in listing.splitlines()]
        for client_port in client_ports:
            for rule in (
                ("INPUT", "-i", self.inside_link, "-p", "tcp", "--sport", str(client_port)),
                ("OUTPUT", "-o", self.inside_link, "-p", "tcp", "--dport", str(client_port)),
            ):
                self.run("iptables", "-A", *rule, "-j", "DROP")
                self._rules.append((*rule, "-j", "DROP"))
        return client_ports

    def connection_attempts(self, port: int) -> int:
        """Connections tried to ``port`` (SYN packets) since its blackhole began."""
        listing = self.run("iptables", "-L", "INPUT", "-v", "-x", "-n")
        return sum(
            int(line.split()[0])
            for line in listing.splitlines()
            if f"dpt:{port}" in line.split() and "flags:0x17/0x02" in line.split()
        )

    def restore(self, port: int) -> None:
        """Let the packets of ``port`` through again."""
        for rule in [rule for rule in self._rules if str(port) in rule]:
            self.run("iptables", "-D", *rule)
            self._rules.remove(rule)

    def close(self) -> None:
        """Kill what still runs inside, delete the namespace and its veth pair; safe twice."""
        atexit.unregister(self.close)
        if not self._made:
            return
        self._made = False
        with contextlib.suppress(NamespaceError):
            for pid in _run("ip", "netns", "pids", self.name).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(NamespaceError):
            _run("ip", "link", "del", self._outside_link)  # takes its peer along
        with contextlib.suppress(NamespaceError):
            _run("ip", "netns", "del", self.name)

    def _free_subnet(self) -> tuple[str, str]:
        """Two addresses of a /30 in 10.250.0.0/16 that no interface here uses."""
        used = _addresses_in_use()
        subnets = list(_NETWORK.subnets(new_prefix=30))
        for _ in range(_ATTEMPTS):
            subnet = random.choice(subnets)
            outside, inside = (str(host) for host in subnet.hosts())
            if f" {outside}/" not in used and f" {inside}/" not in used:
                return outside, inside
        raise NamespaceError("no free /30 found in 10.250.0.0/16")
