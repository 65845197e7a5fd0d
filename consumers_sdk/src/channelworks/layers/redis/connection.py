"""Turning ``hosts`` into Redis clients: one server, several (sharded by hash tag) or a cluster."""

from __future__ import annotations

import socket
import urllib.parse
import zlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from channelworks.exceptions import ConfigurationError
from channelworks.layers.redis.cluster import RoutedLine, SlotMap
from channelworks.layers.redis.watch import ServerWatch
from channelworks.layers.redis.wire import ACK_WITHIN, Caller, Exchange, Line

Client = aioredis.Redis | RedisCluster
__all__ = [
    "BLOCK_SECONDS",
    "LINE_TIMEOUT",
    "Client",
    "Clients",
    "ConnectionPlan",
    "RedisCluster",
    "SocketSettings",
]
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_SCHEMES = {"redis", "rediss", "unix"}
# How long one blocking read waits before it is issued again, and the longest an exchange may
# take (that wait plus time to answer). Read when used, not copied, so tests can shorten them.
BLOCK_SECONDS = 5.0
LINE_TIMEOUT = BLOCK_SECONDS + 10.0
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_KEEPALIVE_SECONDS = 1.0
_KEEPALIVE_INTERVAL = 1  # seconds between probes: TCP's finest
_KEEPALIVE_PROBES = 1  # unanswered probes that end a connection


@dataclass(frozen=True)
class HostSpec:
    """One address to connect to, with its client options (password, TLS settings...)."""

    url: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def address(self) -> str:
        """The address for error messages, without credentials."""
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname or parts.path}" + (
            f":{parts.port}" if parts.port else ""
        )


@dataclass(frozen=True)
class ConnectionPlan:
    """What to connect to: several standalone hosts (sharded) or one cluster."""

    hosts: tuple[HostSpec, ...]
    cluster: bool

    @property
    def addresses(self) -> str:
        return ", ".join(host.address for host in self.hosts)


def _host_spec(host: Any) -> tuple[HostSpec, bool]:
    """One ``hosts`` entry -> (spec, asks for cluster mode)."""
    options: dict[str, Any] = {}
    if isinstance(host, dict):
        options = {key: value for key, value in host.items() if key != "address"}
        host = host.get("address")
        if host is None:
            raise ConfigurationError("a hosts entry given as a dict needs an 'address' key")
    if isinstance(host, list | tuple):
        if len(host) != 2:
            raise ConfigurationError(f"a hosts pair must be (host, port), got {host!r}")
        return HostSpec(f"redis://{host[0]}:{int(host[1])}", tuple(options.items())), False
    if not isinstance(host, str):
        raise ConfigurationError(
            f"hosts entries must be URLs, (host, port) pairs or dicts, got {host!r}"
        )
    parts = urllib.parse.urlsplit(host)
    scheme = parts.scheme
    wants_cluster = scheme in _CLUSTER_SCHEMES
    if wants_cluster:
        host = urllib.parse.urlunsplit(parts._replace(scheme=_CLUSTER_SCHEMES[scheme]))
    elif scheme not in _SCHEMES:
        raise ConfigurationError(
            f"unsupported Redis URL scheme {scheme!r} in {host!r}; use redis://, rediss://, "
            "unix://, redis+cluster:// or rediss+cluster://"
        )
    return HostSpec(host, tuple(options.items())), wants_cluster


def connection_plan(hosts: Sequence[Any] | None, cluster: bool | None = None) -> ConnectionPlan:
    """Validate ``hosts``; cluster mode comes from ``cluster=True`` or a ``+cluster`` URL."""
    if hosts is None:
        hosts = [("localhost", 6379)]
    if isinstance(hosts, str | dict):
        hosts = [hosts]
    if not hosts:
        raise ConfigurationError("hosts must name at least one Redis server")
    parsed = [_host_spec(host) for host in hosts]
    wants_cluster = any(flag for _, flag in parsed)
    if cluster is False and wants_cluster:
        raise ConfigurationError("a redis+cluster:// URL was given but cluster is set to False")
    return ConnectionPlan(tuple(spec for spec, _ in parsed), bool(cluster) or wants_cluster)


@dataclass(frozen=True)
class SocketSettings:
    """How the layer's TCP connections find out that a server is gone.

    ``connect_timeout`` bounds a connect (and, on a cluster, a ping or a slot-map read): an
    address whose pod vanished costs that long, not the exchange timeout. TCP keepalive probes
    a connection idle for ``keepalive_seconds``; one that answers nothing (no data, no probe,
    no acknowledgement of written data: ``TCP_USER_TIMEOUT``) for one second more is ended.

    That is the only way to find a blocking read whose connection went silent while its address
    still answers new connections (a pod replaced behind a Service): the read waits by design,
    and the watch's ping, on a connection of its own, reaches the new pod. The watch cuts an
    exchange whose connection received nothing for ``silent_after`` (``keepalive_seconds`` +
    ``ACK_WITHIN``) while a probe or written data waited for an answer, so such an exchange costs
    about ``keepalive_seconds`` + 0.5 s (1.5 s by default), and TCP ends the connection after
    ``keepalive_seconds`` + 1 s in any case, never the exchange timeout."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "keepalive_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}")

    @property
    def keepalive_idle(self) -> int:
        """Whole seconds (TCP's unit) idle before the first probe."""
        return max(1, round(self.keepalive_seconds))

    @property
    def silent_after(self) -> float:
        """Seconds without a sign of life after which a probed connection is taken for dead."""
        return self.keepalive_idle + ACK_WITHIN

    def keepalive_options(self) -> dict[int, int]:
        """TCP socket options (Linux names; those a platform lacks are left out)."""
        idle = self.keepalive_idle
        wanted = {
            "TCP_KEEPIDLE": idle,
            "TCP_KEEPINTVL": _KEEPALIVE_INTERVAL,
            "TCP_KEEPCNT": _KEEPALIVE_PROBES,
            # with TCP_USER_TIMEOUT set, Linux ends a probed connection after this long
            # without an answer, whatever TCP_KEEPCNT says
            "TCP_USER_TIMEOUT": (idle + _KEEPALIVE_INTERVAL * _KEEPALIVE_PROBES) * 1000,
        }
        return {
            getattr(socket, name): value for name, value in wanted.items() if hasattr(socket, name)
        }


def _common_options(socket_timeout: float, sockets: SocketSettings) -> dict[str, Any]:
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": sockets.connect_timeout,
        "socket_keepalive": True,
        "socket_keepalive_options": sockets.keepalive_options(),
        "health_check_interval": 30,
        "decode_responses": False,
    }


@dataclass
class Clients:
    """The clients of one event loop; ``for_tag`` picks the one that holds a hash tag.

    redis-py's clients serve the occasional call; the hot paths run on connections of the
    layer's own: ``caller`` for batches (one ``Line`` per standalone server, or the cluster's
    ``SlotMap``), ``line`` for a blocking reader's dedicated connection."""

    plan: ConnectionPlan
    clients: list[Client]
    slots: SlotMap | None = None
    sockets: SocketSettings = field(default_factory=lambda: SocketSettings())
    _batch_lines: dict[int, Line] = field(default_factory=dict, init=False, repr=False)
    _watch: ServerWatch | None = field(default=None, init=False, repr=False)

    def _server_watch(self) -> ServerWatch:
        """Standalone servers' watch (a cluster's is its slot map's): the index of a client."""
        if self._watch is None:
            self._watch = ServerWatch(
                self.sockets.connect_timeout,
                self._probe_line,
                silent_after=self.sockets.silent_after,
            )
        return self._watch

    def _probe_line(self, server: Hashable) -> Line:
        client = self.clients[cast(int, server)]
        assert isinstance(client, aioredis.Redis)
        return Line(client, 2 * self.sockets.connect_timeout)

    def _watched_line(self, client: Client, blocking: bool) -> Line:
        assert isinstance(client, aioredis.Redis)
        index = self.clients.index(client)
        return Line(client, LINE_TIMEOUT, self._server_watch(), index, blocking)

    def for_tag(self, tag: str) -> Client:
        if len(self.clients) == 1:
            return self.clients[0]
        return self.clients[zlib.crc32(tag.encode()) % len(self.clients)]

    @property
    def one_route(self) -> bool:
        """Whether every call goes out on one connection: one standalone server."""
        return self.slots is None and len(self.clients) == 1

    def route(self, tag: str) -> Hashable:
        """Which connection calls for ``tag`` go out on (its master's, as far as is known)."""
        if self.slots is not None:
            return self.slots.route(tag)
        return id(self.for_tag(tag))

    def caller(self, client: Client) -> Caller:
        """How batches for ``client`` are run (one exchange at a time per connection)."""
        if self.slots is not None:
            return self.slots.call
        line = self._batch_lines.get(id(client))
        if line is None:
            line = self._batch_lines[id(client)] = self._watched_line(client, blocking=False)
        return line.call

    def line(self, tag: str) -> Exchange:
        """A new dedicated connection to the server holding ``tag``; its user closes it."""
        if self.slots is not None:
            return RoutedLine(self.slots, tag, LINE_TIMEOUT)
        return self._watched_line(self.for_tag(tag), blocking=True)

    def address_of(self, client: Client) -> str:
        if self.plan.cluster:
            return self.plan.addresses
        return self.plan.hosts[self.clients.index(client)].address

    async def close(self) -> None:
        if self._watch is not None:
            await self._watch.close()
            self._watch = None
        lines, self._batch_lines = self._batch_lines, {}
        for line in lines.values():
            await line.close()
        if self.slots is not None:
            await self.slots.close()
        for client in self.clients:
            await client.aclose()


def open_clients(plan: ConnectionPlan, sockets: SocketSettings | None = None) -> Clients:
    """Create (not yet connected) clients; connections are made on first use."""
    sockets = sockets or SocketSettings()
    options = _common_options(LINE_TIMEOUT, sockets)
    if plan.cluster:
        addresses = [
            (
                urllib.parse.urlsplit(host.url).hostname or "localhost",
                urllib.parse.urlsplit(host.url).port or 6379,
            )
            for host in plan.hosts
        ]
        first = plan.hosts[0]
        parts = urllib.parse.urlsplit(first.url)
        extra = dict(first.options)
        url_password = urllib.parse.unquote(parts.password) if parts.password else None
        node_options = {
            "password": extra.pop("password", url_password),
            "username": urllib.parse.unquote(parts.username) if parts.username else None,
            "ssl": parts.scheme == "rediss",
            **options,
            **extra,
        }
        cluster = RedisCluster(
            startup_nodes=[aioredis.cluster.ClusterNode(*address) for address in addresses],
            max_connections=2000,
            **node_options,
        )
        return Clients(
            plan,
            [cluster],
            slots=SlotMap(
                addresses,
                node_options,
                LINE_TIMEOUT,
                sockets.connect_timeout,
                silent_after=sockets.silent_after,
            ),
            sockets=sockets,
        )
    return Clients(
        plan,
        [aioredis.Redis.from_url(host.url, **options, **dict(host.options)) for host in plan.hosts],
        sockets=sockets,
    )
