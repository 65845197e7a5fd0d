"""One flood of chat messages on ``chat-cluster``, watched while it happens: the workers scale
out under it and back in once it stops, and Prometheus scrapes all of it. The autoscaling test
and the Prometheus test both read this one run (a flood costs a minute or two of a 2-core node).

The backlog is kept until the workers scaled out AND a scrape saw the queue at the autoscaler's
target AND the workers' scrapes show messages handled: the interface's message rate bounds what
the flood puts in, so fast workers can keep the queue near the target, and a flood that stopped
at the scale-out could end between two scrapes (5 s apart; the operator reads the queue every
3 s). A flood of a few seconds handled by freshly started pods can also leave no increase
between two scrapes of any worker, so the dashboard's rate panels would show nothing of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets

from e2e.chat_clients import ChatAddress
from e2e.cluster import App, Cluster, wait_until
from e2e.fixtures_chat import (
    MAX_WORKERS,
    MIN_WORKERS,
    TARGET_QUEUE_DEPTH,
    status,
)
from e2e.prometheus_server import PrometheusAPI
from tests.dataplane.clients import JsonSocket, join, login, open_chat

LOAD_SOCKETS = 8
OUTSTANDING = 40  # per socket: 320 waiting messages at a target of 20 per worker -> the maximum
SCALE_TIMEOUT = 300.0
FOREIGN_ORIGIN = "http://elsewhere.example"


@dataclass
class Flood:
    """What one flood did, in wall-clock seconds (Prometheus' time)."""

    started: float = 0.0
    scaled_out: float = 0.0
    stopped: float = 0.0
    back_in: float = 0.0
    sent: int = 0
    most_workers: int = 0
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """Every distinct ``status.autoscaler`` seen from the start until the workers were back in."""

    def note(self, found: dict[str, Any]) -> None:
        decision = found.get("autoscaler")
        if decision and decision not in self.decisions:
            self.decisions.append(decision)
        workers = int(found.get("worker", {}).get("replicas") or 0)
        self.most_workers = max(self.most_workers, workers)


async def _refused_handshake(chat: ChatAddress, session: str) -> None:
    """A page of another site opens the chat socket: the interface refuses it (``origin``)."""
    headers = {"Cookie": f"sessionid={session}", "Origin": FOREIGN_ORIGIN}
    try:
        connection = await websockets.connect(chat.ws, additional_headers=headers, open_timeout=30)
    except websockets.InvalidStatus as refused:
        assert refused.response.status_code == 403, refused.response
        return
    await connection.close()
    pytest.fail(f"a WebSocket with Origin {FOREIGN_ORIGIN} was accepted")


async def _keep_a_backlog(chat: ChatAddress, flood: Flood, enough: Callable[[], bool]) -> None:
    """LOAD_SOCKETS sockets keep OUTSTANDING chat messages each in flight (sent, not yet
    broadcast back) until ``enough()``: a steady queue for the autoscaler whatever the workers'
    speed, never near the channel capacity. Bounded by SCALE_TIMEOUT."""
    session = await login(chat.base, "bob")
    await _refused_handshake(chat, session)
    sockets: list[JsonSocket] = [
        (await open_chat(chat.ws, session))[0] for _ in range(LOAD_SOCKETS)
    ]
    sent, echoed = [0] * LOAD_SOCKETS, [0] * LOAD_SOCKETS

    async def count_echoes(index: int) -> None:
        prefix = f"flood {index}-"
        while True:
            frame = await sockets[index].recv(timeout=SCALE_TIMEOUT)
            if str(frame.get("message", "")).startswith(prefix):
                echoed[index] += 1

    readers: list[asyncio.Task[None]] = []
    try:
        for socket in sockets:
            await join(socket, "random")
        readers = [asyncio.create_task(count_echoes(i)) for i in range(LOAD_SOCKETS)]
        flood.started = time.time()
        deadline = time.monotonic() + SCALE_TIMEOUT
        while not await asyncio.to_thread(enough):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no scale-out, no scrape of the queue at the target or none of workers "
                    f"handling it within {SCALE_TIMEOUT:.0f}s of a steady backlog: {flood}"
                )
            for index, socket in enumerate(sockets):
                while sent[index] - echoed[index] < OUTSTANDING:
                    text = f"flood {index}-{sent[index]}"
                    await socket.send({"command": "send", "room": "random", "message": text})
                    sent[index] += 1
            await asyncio.sleep(1)
    finally:
        # Closed while their readers still read: a socket nobody reads cannot finish its close
        # handshake (the client stops reading once its frame queue is full).
        await asyncio.gather(*(socket.close() for socket in sockets))
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        flood.sent = sum(sent)
        flood.stopped = time.time()


def queue_depth_query(app: App) -> str:
    """The app's queue depth in Prometheus (every channel's together)."""
    return f'sum(channelworks_layer_queue_depth{{app="{app.namespace}.{app.name}"}})'


def _workers_seen_handling(prometheus: PrometheusAPI, app: App) -> bool:
    """Whether two recent scrapes of the app's workers show messages handled in between: the
    dashboard's handler-latency panel (a rate over 30 s) then has data of this flood. Over 20 s,
    so the test's query points a few seconds later still hold both scrapes."""
    pods = f'namespace="{app.namespace}", pod=~"{app.name}-worker-.+"'
    found = prometheus.query(
        f"sum(rate(channelworks_worker_message_duration_seconds_count{{{pods}}}[20s]))"
    )
    return bool(found) and float(found[0]["value"][1]) > 0


def _scraped_at_the_target(prometheus: PrometheusAPI, app: App, since: float) -> bool:
    """Whether a scrape since ``since`` saw the app's queue at the autoscaler's target or more."""
    window = max(1, int(time.time() - since) + 1)
    peak = prometheus.query(f"max_over_time({queue_depth_query(app)}[{window}s:1s])")
    return bool(peak) and float(peak[0]["value"][1]) >= TARGET_QUEUE_DEPTH


@pytest.fixture(scope="session")
def flood(cluster: Cluster, cluster_app: App, prometheus: PrometheusAPI) -> Flood:
    """Flood ``chat-cluster`` until its workers scale out and Prometheus saw the queue at the
    target and the workers handling messages, stop, and wait until they are back at
    ``minReplicas`` with an empty queue. Prometheus scrapes throughout."""
    found = status(cluster, cluster_app)
    assert found["worker"]["replicas"] == MIN_WORKERS, found["worker"]
    result = Flood()

    def scaled_out_and_scraped() -> bool:
        now = status(cluster, cluster_app)
        result.note(now)
        if not result.scaled_out and int(now.get("worker", {}).get("replicas") or 0) > MIN_WORKERS:
            result.scaled_out = time.time()
        return (
            bool(result.scaled_out)
            and _scraped_at_the_target(prometheus, cluster_app, result.started)
            and _workers_seen_handling(prometheus, cluster_app)
        )

    asyncio.run(_keep_a_backlog(ChatAddress.of(cluster_app), result, scaled_out_and_scraped))

    def scaled_in() -> tuple[bool, dict[str, Any]]:
        now = status(cluster, cluster_app)
        result.note(now)
        worker = now.get("worker", {})
        back = worker.get("replicas") == MIN_WORKERS == worker.get("readyReplicas")
        return back and now.get("queueDepth") == 0, now

    # Idle: the queue drains, then scaleDownStabilizationSeconds later the workers go back in.
    wait_until("the workers scaling back in", scaled_in, SCALE_TIMEOUT)
    result.back_in = time.time()
    assert result.most_workers <= MAX_WORKERS, result
    return result
