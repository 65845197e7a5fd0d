"""The resync loop: every known RealtimeApp is reconciled again when it is due.

kopf's handlers react to changes of the app; this loop is the level-triggered part. It knows
the apps from their watch events (``observe``), runs ``Reconciler.reconcile`` for each one every
``pollIntervalSeconds`` (built-in autoscaler) or ``resync_seconds``, a few at a time, and sooner
when one of the app's Deployments or StatefulSets changes (``poke``). A full pass (every child
applied again) happens every ``resync_seconds``, or at once when a child was deleted or its spec
changed. Failures are retried after ``retry_delay_seconds``; a blocked app after its own delay.

It is not a kopf timer on purpose: kopf timers put a finalizer on every object, and deleting an
app must not depend on the operator running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from channelworks_operator import spec
from channelworks_operator.config import OperatorConfig
from channelworks_operator.exceptions import Blocked, InvalidSpec
from channelworks_operator.metrics import Metrics
from channelworks_operator.reconcile import Reconciler

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.5
CHILD_EVENT_DELAY_SECONDS = 1.0


@dataclass
class Tracked:
    """An app the loop knows: its last seen body and when it is due."""

    body: Mapping[str, Any]
    next_due: float
    full: bool = False


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

    async def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Keep the list of apps current (every watch event of a RealtimeApp)."""
        metadata = body.get("metadata", {})
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        if event_type == "DELETED" or metadata.get("deletionTimestamp"):
            if self._apps.pop(key, None) is not None:
                await self.reconciler.forget(key, str(metadata.get("uid", "")))
        elif key in self._apps:
            self._apps[key].body = body
        else:
            self._apps[key] = Tracked(body, next_due=self.clock() + self._interval(body))
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
                    soon = self.clock() + CHILD_EVENT_DELAY_SECONDS
                    tracked.next_due = min(tracked.next_due, soon)
                    tracked.full = tracked.full or respec

    def _interval(self, body: Mapping[str, Any]) -> float:
        try:
            app = spec.parse(body)
        except InvalidSpec:
            return self.config.resync_seconds
        polls = [
            pool.worker.autoscaling.poll_interval_seconds
            for pool in app.pools
            if pool.worker.autoscaling.enabled and pool.worker.autoscaling.mode == "builtin"
        ]
        if app.interface.autoscaling.enabled:
            polls.append(app.interface.autoscaling.poll_interval_seconds)
        return float(min([*polls, self.config.resync_seconds]))

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile each known app when it is due, a few at a time, until ``stop`` is set."""
        limit = asyncio.Semaphore(self.config.max_concurrent_reconciles)
        tasks: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            now = self.clock()
            for key, tracked in list(self._apps.items()):
                if tracked.next_due <= now and key not in self._running:
                    self._running.add(key)
                    task = asyncio.create_task(self._resync(key, tracked, limit))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _resync(self, key: str, tracked: Tracked, limit: asyncio.Semaphore) -> None:
        delay = self.config.retry_delay_seconds
        try:
            async with limit:
                full, tracked.full = tracked.full, False
                await self.reconciler.reconcile(tracked.body, full=full)
                delay = self._interval(tracked.body)
        except InvalidSpec:
            delay = self.config.resync_seconds
        except Blocked as blocked:
            delay = blocked.delay
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("[%s] failed to reconcile; retrying in %gs", key, delay)
        finally:
            tracked.next_due = self.clock() + delay
            self._running.discard(key)
