"""The chat app while Kubernetes moves its pods: a worker pod deleted under load loses none of the
WebSocket events it had taken (counted), and an interface rolling update closes every socket with
1012, the clients reconnect and go on, and no HTTP request meanwhile gets a 5xx (docs/interface.md:
a draining interface answers HTTP normally; docs/operating.md: rollouts add pods before removing
any and drain sockets with 1012)."""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from e2e.chat_clients import ChatAddress, ReconnectingClient, interface_pods, stop_clients
from e2e.cluster import App, Cluster, wait_until
from tests.dataplane.clients import join, login, open_chat
from tests.dataplane.processes import metric

# Worker deletion under load.
LOAD_SOCKETS = 6
MESSAGES_PER_SOCKET = 60
OUTSTANDING = 8  # per socket: sent, not yet broadcast back
DELETE_AFTER = 0.3  # of all messages echoed
ECHO_TIMEOUT = 180.0  # a replacement worker pod must start meanwhile
WORKER_CONCURRENCY = 8  # realtimeapp.yaml's spec.worker.concurrency: the most a stop can repeat

# Interface rollout.
ROLL_SOCKETS = 6
ROLL_TIMEOUT = 240.0
HTTP_PAUSE = 0.2


def _ready_workers(cluster: Cluster, app: App) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={app.name},app.kubernetes.io/component=worker"
    return [
        pod
        for pod in cluster.items("pods", app.namespace, selector)
        if pod["metadata"].get("deletionTimestamp") is None
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod["status"].get("conditions") or []
        )
    ]


async def _worker_counts(pod_ip: str) -> tuple[float, float]:
    """(WebSocket frames the worker has handled, messages it holds now) from its metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        page = (await client.get(f"http://{pod_ip}:9100/metrics")).text
    handled = metric(page, "channelworks_worker_messages_total", {"channel": "websocket.receive"})
    return handled, metric(page, "channelworks_worker_in_flight_messages")


@dataclass
class Load:
    sent: list[set[str]] = field(default_factory=lambda: [set() for _ in range(LOAD_SOCKETS)])
    echoed: list[collections.Counter[str]] = field(
        default_factory=lambda: [collections.Counter() for _ in range(LOAD_SOCKETS)]
    )

    def outstanding(self, index: int) -> int:
        return len(self.sent[index] - set(self.echoed[index]))

    @property
    def total_echoed(self) -> int:
        return sum(len(set(counter)) for counter in self.echoed)

    def summary(self) -> str:
        sent = [len(texts) for texts in self.sent]
        echoed = [len(set(counter)) for counter in self.echoed]
        return f"sent per socket {sent}, came back {echoed}"


async def _load_while_deleting_a_worker(
    cluster: Cluster, app: App, address: ChatAddress
) -> tuple[Load, dict[str, Any]]:
    """LOAD_SOCKETS sockets each send MESSAGES_PER_SOCKET numbered chat messages, OUTSTANDING at
    a time, to a room of this run; once DELETE_AFTER of them came back, one worker pod is deleted
    (after reading what it has taken). Every socket reads everything it is sent throughout."""
    room = "random"
    run = secrets.token_hex(3)
    session = await login(address.base, "bob")
    sockets = [(await open_chat(address.ws, session))[0] for _ in range(LOAD_SOCKETS)]
    load, deleted = Load(), dict[str, Any]()
    for socket in sockets:
        await join(socket, room)
    total = LOAD_SOCKETS * MESSAGES_PER_SOCKET

    async def read(index: int) -> None:
        prefix = f"{run} {index}-"
        while True:
            frame = await sockets[index].recv(timeout=ECHO_TIMEOUT)
            text = str(frame.get("message", ""))
            if text.startswith(prefix):
                load.echoed[index][text] += 1

    def still_reading(index: int) -> None:
        if readers[index].done():
            raise AssertionError(
                f"socket {index} stopped: {readers[index].exception()!r}; {load.summary()}"
            )

    async def send(index: int) -> None:
        for number in range(MESSAGES_PER_SOCKET):
            waited_until = time.monotonic() + ECHO_TIMEOUT
            while load.outstanding(index) >= OUTSTANDING:
                still_reading(index)
                if time.monotonic() > waited_until:
                    raise AssertionError(
                        f"socket {index}: nothing came back for {ECHO_TIMEOUT:.0f}s; "
                        f"{load.summary()}; deleted {deleted}"
                    )
                await asyncio.sleep(0.05)
            text = f"{run} {index}-{number}"
            load.sent[index].add(text)
            await sockets[index].send({"command": "send", "room": room, "message": text})

    async def delete_a_worker() -> None:
        while load.total_echoed < DELETE_AFTER * total:
            await asyncio.sleep(0.1)
        # The busiest ready worker (the autoscaler may have added some): it holds events now.
        workers = await asyncio.to_thread(_ready_workers, cluster, app)
        counts = [await _worker_counts(pod["status"]["podIP"]) for pod in workers]
        (handled, holding), victim = max(zip(counts, workers, strict=True), key=lambda x: x[0])
        name = victim["metadata"]["name"]
        await asyncio.to_thread(
            cluster.kubectl, "delete", "pod", name, "-n", app.namespace, "--wait=false"
        )
        deleted.update(pod=name, handled_before=handled, holding=holding,
                       echoed_then=load.total_echoed)  # fmt: skip

    readers = [asyncio.create_task(read(index)) for index in range(LOAD_SOCKETS)]
    try:
        await asyncio.gather(delete_a_worker(), *(send(i) for i in range(LOAD_SOCKETS)))
        deadline = time.monotonic() + ECHO_TIMEOUT
        while load.total_echoed < total and time.monotonic() < deadline:
            for index in range(LOAD_SOCKETS):
                still_reading(index)
            await asyncio.sleep(0.2)
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return load, deleted


def test_a_worker_pod_deleted_under_load_loses_no_event_it_took(cluster: Cluster, app: App) -> None:
    load, deleted = asyncio.run(_load_while_deleting_a_worker(cluster, app, ChatAddress.of(app)))
    lost = [sorted(sent - set(echoed)) for sent, echoed in zip(load.sent, load.echoed, strict=True)]
    lost_count = sum(len(missing) for missing in lost)
    repeated = sum(n - 1 for counter in load.echoed for n in counter.values() if n > 1)
    summary = (
        f"sent {sum(len(s) for s in load.sent)}, echoed {load.total_echoed}, lost {lost_count}, "
        f"repeated {repeated}; deleted {deleted}"
    )
    print(summary)
    assert deleted["handled_before"] > 0, f"the deleted worker had taken no event: {summary}"
    assert lost_count == 0, f"{summary}; lost: {lost}"
    assert repeated <= WORKER_CONCURRENCY, summary


async def _http_while(address: ChatAddress, done: asyncio.Event) -> collections.Counter[str]:
    """GET the login page through the Service every HTTP_PAUSE until ``done``, each on a new
    connection; count the answers by status, and the failures by kind."""
    answers: collections.Counter[str] = collections.Counter()
    while not done.is_set():
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                page = await client.get(f"{address.base}/accounts/login/")
            answers[str(page.status_code)] += 1
        except httpx.ConnectError:
            answers["connect_failed"] += 1  # e.g. a pod that stopped listening
        except httpx.HTTPError as error:
            answers[type(error).__name__] += 1
        await asyncio.sleep(HTTP_PAUSE)
    return answers


def _rolled(cluster: Cluster, app: App, value: str) -> Callable[[], tuple[bool, Any]]:
    def check() -> tuple[bool, Any]:
        selector = f"app.kubernetes.io/instance={app.name},app.kubernetes.io/component=interface"
        pods = cluster.items("pods", app.namespace, selector)
        envs = [
            {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
            for pod in pods
        ]
        ready = interface_pods(cluster, app)
        new = all(env.get("E2E_ROLLOUT") == value for env in envs)
        return new and len(pods) == len(ready) == 2, [p["metadata"]["name"] for p in pods]

    return check


async def _roll_the_interfaces(cluster: Cluster, app: App, address: ChatAddress) -> None:
    session = await login(address.base, "bob")
    alice_session = await login(address.base, "alice")
    deadline = time.monotonic() + ROLL_TIMEOUT
    clients = [ReconnectingClient(session, address, ROLL_TIMEOUT) for _ in range(ROLL_SOCKETS)]
    running = [asyncio.create_task(client.run(deadline)) for client in clients]
    http_done = asyncio.Event()
    http = asyncio.create_task(_http_while(address, http_done))
    try:
        while sum(client.connects for client in clients) < ROLL_SOCKETS:
            await asyncio.sleep(0.1)
        value = secrets.token_hex(4)
        patch = [{"op": "add", "path": "/spec/interface/env",
                  "value": [{"name": "E2E_ROLLOUT", "value": value}]}]  # fmt: skip
        await asyncio.to_thread(
            cluster.kubectl, "patch", "rtapp", app.name, "-n", app.namespace, "--type", "json",
            "-p", json.dumps(patch),
        )  # fmt: skip
        await asyncio.to_thread(
            wait_until, "the interface pods replaced", _rolled(cluster, app, value), ROLL_TIMEOUT
        )

        def everyone_back() -> bool:
            return all(
                client.closes and client.connects == len(client.closes) + 1 for client in clients
            )

        while not everyone_back():
            for task in running:
                if task.done():
                    task.result()
            assert time.monotonic() < deadline, [(c.closes, c.connects) for c in clients]
            await asyncio.sleep(0.2)

        # They go on: what alice says now reaches every reconnected client.
        text = f"after the rollout {value}"
        alice, _ = await open_chat(address.ws, alice_session)
        try:
            await join(alice, "lobby")
            await alice.send({"command": "send", "room": "lobby", "message": text})
            while not all(text in client.heard for client in clients):
                assert time.monotonic() < deadline, "not every client heard alice"
                await asyncio.sleep(0.1)
        finally:
            await alice.close()
    finally:
        http_done.set()
        answers = await http
        await stop_clients(clients, running)
    print(f"HTTP during the rollout: {dict(answers)}; closes: {[c.closes for c in clients]}")
    assert all(code == 1012 for client in clients for code in client.closes), [
        client.closes for client in clients
    ]
    server_errors = {k: n for k, n in answers.items() if k.isdigit() and int(k) >= 500}
    assert not server_errors, f"5xx during the rollout: {dict(answers)}"
    unanswered = {k: n for k, n in answers.items() if not k.isdigit() and k != "connect_failed"}
    assert not unanswered, f"requests cut off during the rollout: {dict(answers)}"
    assert answers["200"] > 0, dict(answers)


def test_an_interface_rollout_sends_1012_and_the_clients_carry_on(
    cluster: Cluster, app: App
) -> None:
    asyncio.run(_roll_the_interfaces(cluster, app, ChatAddress.of(app)))
