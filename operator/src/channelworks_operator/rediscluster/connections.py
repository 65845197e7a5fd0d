"""Clients to the Redis pods (one per address, authenticated), and reading their state."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Self

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError, ResponseError

from channelworks_operator.rediscluster import exceptions, topology

CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 15.0


class Connections:
    """One client per pod address for the length of an ``ensure`` call; closed on exit."""

    def __init__(
        self, password: str | None = None, *, command_timeout: float = COMMAND_TIMEOUT
    ) -> None:
        self.password = password
        self._command_timeout = command_timeout
        self._clients: dict[str, aioredis.Redis] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def client(self, address: str) -> aioredis.Redis:
        if address not in self._clients:
            host, port = topology.split_address(address)
            self._clients[address] = aioredis.Redis(
                host=host,
                port=port,
                password=self.password,
                socket_connect_timeout=CONNECT_TIMEOUT,
                # No socket_timeout: redis-py then wraps each send in asyncio.wait_for, which on
                # Python 3.11 can swallow a cancellation; ``_deadline`` bounds every call instead.
                socket_timeout=None,
                decode_responses=False,
                # One quick retry: a node that does not answer is reported, not waited for.
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
            )
        return self._clients[address]

    async def command(self, address: str, *args: Any) -> Any:
        """One command, its reply raw (``CLUSTER NODES`` etc. are sent as two words so that
        redis-py's reply parsers stay out of the way)."""
        send: Callable[..., Awaitable[Any]] = self.client(address).execute_command  # untyped
        async with self._deadline(address):
            return await send(*args)

    async def pipeline(
        self, address: str, commands: Sequence[Sequence[Any]], *, timeout: float | None = None
    ) -> list[Any]:
        """Several commands in one round trip; the first error reply is raised, naming the node."""
        if not commands:
            return []
        async with (
            self._deadline(address, timeout),
            self.client(address).pipeline(transaction=False) as pipe,
        ):
            queue: Callable[..., Any] = pipe.execute_command  # untyped in redis-py
            for args in commands:
                queue(*args)
            try:
                replies: list[Any] = await pipe.execute()
            except ResponseError as error:
                raise ResponseError(f"{address}: {error}") from error
            return replies

    @contextlib.asynccontextmanager
    async def _deadline(self, address: str, timeout: float | None = None) -> AsyncIterator[None]:
        """Bound one call; a node that stops answering raises ``TimeoutError`` and its client is
        dropped, so the next call starts on a clean connection."""
        seconds = timeout or self._command_timeout
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError as error:
            client = self._clients.pop(address, None)
            if client is not None:
                await client.aclose()
            raise TimeoutError(f"{address}: no reply within {seconds:g}s") from error

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()


async def _resolve(host: str, port: int) -> str:
    """The IP of ``host`` (MEET in Redis 7.0 takes IPs only)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"{host} does not resolve")
    return str(infos[0][4][0])


def text(reply: Any) -> str:
    """A raw reply as text."""
    return reply.decode() if isinstance(reply, bytes) else str(reply)


async def observe_pod(
    connections: Connections, ordinal: int, address: str | None
) -> topology.PodState:
    """Read one pod's node: ``CLUSTER NODES``, ``DBSIZE`` and ``cluster_state``."""
    if address is None:
        return topology.PodState(ordinal, None, error="pod is not ready")
    try:
        host, port = topology.split_address(address)
        ip = await _resolve(host, port)
        nodes, keys, info = await connections.pipeline(
            address, [("CLUSTER", "NODES"), ("DBSIZE",), ("CLUSTER", "INFO")]
        )
        fields = dict(line.split(":", 1) for line in text(info).splitlines() if ":" in line)
        return topology.PodState(
            ordinal,
            address,
            host=ip,
            port=port,
            table=topology.parse_cluster_nodes(text(nodes)),
            keys=int(keys),
            cluster_state=fields.get("cluster_state", "").strip(),
        )
    except (RedisError, OSError, TimeoutError, exceptions.RedisClusterError) as error:
        return topology.PodState(ordinal, address, error=f"{type(error).__name__}: {error}")


async def observe(connections: Connections, pods: Sequence[str | None]) -> topology.Observation:
    """Every pod, read in parallel; a pod that does not answer is recorded with the reason."""
    states = await asyncio.gather(
        *(observe_pod(connections, ordinal, address) for ordinal, address in enumerate(pods))
    )
    return topology.Observation(tuple(states))
