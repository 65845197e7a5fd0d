"""The one scheduler of reconciles: every known RealtimeApp is reconciled when it is due.

The loop knows the apps from their watch events (``observe``, fed by kopf's event handler:
the listing at start-up, then every change). An app is due

- at once when it is new or changed (its generation, labels or annotations moved), with a
  full pass (every child applied again);
- one second after one of its Deployments, StatefulSets or Jobs changed (``poke``), with a
  full pass when the child was deleted or its spec changed (maybe by hand);
- else every ``pollIntervalSeconds`` (autoscaling in any mode) or ``resync_seconds``; a full pass
  at least every ``resync_seconds`` (the reconciler decides that).

A few run at a time (``max_concurrent_reconciles``), never two of one app. The retry policy
is the operator's exceptions (``exceptions.py``): a ``PermanentError`` waits for the app to
change, a ``TemporaryError`` runs again after its ``delay``, any other failure after
``retry_delay_seconds``.

It is not a kopf timer on purpose: kopf timers put a finalizer on every object, and deleting an
app must not depend on the operator running. And kopf's create/update/resume handlers are not
used: they would be a second scheduler with a backoff of their own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from channelworks_operator import scaling, spec
from channelworks_operator.config import OperatorConfig
from channelworks_operator.exceptions import InvalidSpec, PermanentError, TemporaryError
from channelworks_operator.metrics import Metrics
from channelworks_operator.reconcile import Reconciler

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.5
CHILD_EVENT_DELAY_SECONDS = 1.0
NEVER = math.inf


@dataclass
class Tracked:
    """An app the loop knows: its last seen body, when it is due and whether fully."""

    body: Mapping[str, Any]
    next_due: float
    full: bool = False
    # The earliest time an event asked for while a run was going on (kept by that run's end).
    asked: float = NEVER

    def ask(self, when: float, *, full: bool) -> None:
        self.next_due = min(self.next_due, when)
        self.asked = min(self.asked, when)
        self.full = self.full or full


def _essence(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a change of the app is made of (not its status, which the operator writes)."""
    metadata = body.get("metadata", {})
    return (
        metadata.get("generation"),
        sorted((metadata.get("labels") or {}).items()),
        sorted((metadata.get("annotations") or {}).items()),
    )


def retry_delay(error: BaseException | None, interval: float, config: OperatorConfig) -> float:
    """Seconds until the next run of an app whose run ended with ``error`` (None: success)."""
    if error is None:
        return interval
    if isinstance(error, PermanentError):
        return NEVER
    if isinstance(error, TemporaryError):
        return error.delay
    return config.retry_delay_seconds


class Resync:
    def __init__(
        self,
        config: OperatorConfig,
        reconciler: Reconciler,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.reconciler = reconciler
        self.metrics = metrics
        self.clock = clock
        self._apps: dict[str, Tracked] = {}
        self._running: set[str] = set()
        self._generations: dict[str, Any] = {}  # watched child uid -> last seen generation
        self._wake = asyncio.Event()

    def due(self, key: str) -> tuple[float, bool] | None:
        """When the app ``namespace/name`` is due and whether fully (None: unknown app)."""
        tracked = self._apps.get(key)
        return None if tracked is None else (tracked.next_due, tracked.full)

    async def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Keep the list of apps current (every watch event of a RealtimeApp)."""
        metadata = body.get("metadata", {})
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        tracked = self._apps.get(key)
        if event_type == "DELETED" or metadata.get("deletionTimestamp"):
            if self._apps.pop(key, None) is not None:
                await self.reconciler.forget(key, str(metadata.get("uid", "")))
        elif tracked is None:
            self._apps[key] = Tracked(body, next_due=self.clock(), full=True)
            self._wake.set()
        else:
            changed = _essence(tracked.body) != _essence(body)
            tracked.body = body
            if changed:
                tracked.ask(self.clock(), full=True)
                self._wake.set()
        self.metrics.apps.set(len(self._apps))

    def poke(self, child: Mapping[str, Any], *, deleted: bool) -> None:
        """A child changed or went away: look at its app soon. A full pass (every child applied
        again) when it was deleted or its spec changed (its generation moved): maybe by hand."""
        metadata = child.get("metadata", {})
        uid = str(metadata.get("uid", ""))
        generation = metadata.get("generation")
        seen = self._generations.pop(uid, None) if deleted else self._generations.get(uid)
        if not deleted:
            self._generations[uid] = generation
        respec = deleted or (seen is not None and seen != generation)
        for owner in metadata.get("ownerReferences") or []:
            if owner.get("kind") == spec.KIND and owner.get("controller"):
                tracked = self._apps.get(f"{metadata.get('namespace')}/{owner.get('name')}")
                if tracked is not None:
                    tracked.ask(self.clock() + CHILD_EVENT_DELAY_SECONDS, full=respec)

    def _interval(self, body: Mapping[str, Any]) -> float:
        try:
            app = spec.parse(body)
        except InvalidSpec:
            return self.config.resync_seconds
        # Autoscaling in any mode: KEDA and an HPA read the queue gauges a run refreshes.
        poll = scaling.poll_seconds(app)
        return float(min(poll, self.config.resync_seconds) if poll else self.config.resync_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile each known app when it is due, a few at a time, until ``stop`` is set."""
        limit = asyncio.Semaphore(self.config.max_concurrent_reconciles)
        tasks: set[asyncio.Task[None]] = set()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()
                for task in self.start_due(limit):
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {stopping, woken}, timeout=TICK_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                woken.cancel()
        finally:
            stopping.cancel()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def start_due(self, limit: asyncio.Semaphore) -> list[asyncio.Task[None]]:
        """Start a run of every app that is due and not running (a task each)."""
        now = self.clock()
        started = []
        for key, tracked in list(self._apps.items()):
            if tracked.next_due <= now and key not in self._running:
                self._running.add(key)
                started.append(asyncio.create_task(self._resync(key, tracked, limit)))
        return started

    async def _resync(self, key: str, tracked: Tracked, limit: asyncio.Semaphore) -> None:
        error: BaseException | None = None
        full = False
        try:
            async with limit:
                full, tracked.full, tracked.asked = tracked.full, False, NEVER
                tracked.next_due = NEVER  # while it runs; events during the run go to ``asked``
                await self.reconciler.reconcile(tracked.body, full=full)
        except asyncio.CancelledError:
            raise
        except PermanentError as failed:
            error = failed
            logger.info("[%s] %s; waiting for the app to change", key, failed)
        except TemporaryError as failed:
            error = failed
        except Exception as failed:
            error = failed
            delay = self.config.retry_delay_seconds
            logger.exception("[%s] failed to reconcile; retrying in %gs", key, delay)
        finally:
            if error is not None:  # the pass it was asked for is still owed
                tracked.full = tracked.full or full
            delay = retry_delay(error, self._interval(tracked.body), self.config)
            tracked.next_due = min(self.clock() + delay, tracked.asked)
            self._running.discard(key)
            self._wake.set()
