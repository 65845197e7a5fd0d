"""Leader election with a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does.

One replica holds the Lease and acts; the others wait and take over when it stops renewing.
Expiry is judged on the local clock from when this replica last saw the Lease change (not from
the times written in it), so clock skew between nodes does not matter. The holder renews every
``retry_period``; if it cannot renew for ``renew_deadline`` it stops acting (``keep`` returns)
before the Lease (``lease_duration``) can expire for the others. A renewal call that hangs counts
as a failed one once the deadline passes: ``keep`` does not wait for it.

In a pod (``POD_UID`` set from the downward API), the Lease names the holder's Pod as its owner,
so Kubernetes' garbage collector deletes it once the last holder's Pod is gone: ``helm
uninstall`` leaves no Lease behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from channelworks_operator import timestamps
from channelworks_operator.config import OperatorConfig
from channelworks_operator.exceptions import ApiError
from channelworks_operator.kube import Kube

logger = logging.getLogger(__name__)

API_VERSION = "coordination.k8s.io/v1"


class LeaderElector:
    """Blocking Lease operations (run in a thread); ``try_acquire_or_renew`` is one attempt."""

    def __init__(
        self, kube: Kube, config: OperatorConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube = kube
        self.namespace = config.leader_election_namespace
        self.name = config.leader_election_name
        self.identity = config.identity
        self.duration = config.lease_duration_seconds
        self.owner = _pod_owner(config)
        self.clock = clock
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    def _record(self, lease: dict[str, Any]) -> tuple[Any, ...]:
        spec = lease.get("spec") or {}
        return (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))

    def try_acquire_or_renew(self) -> bool:
        """Take or keep the Lease; False while another live replica holds it."""
        now = self.clock()
        lease = self.kube.get(API_VERSION, "Lease", self.namespace, self.name)
        stamp = timestamps.now_micro()
        seconds = max(1, round(self.duration))
        if lease is None:
            manifest = {
                "apiVersion": API_VERSION,
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace, **self.owner},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": seconds,
                    "acquireTime": stamp,
                    "renewTime": stamp,
                    "leaseTransitions": 0,
                },
            }
            try:
                self.kube.create(manifest)
            except ApiError as error:
                if error.conflict:
                    return False
                raise
            self._observed, self._observed_at = None, now
            return True
        record = self._record(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, now
        spec = dict(lease.get("spec") or {})
        holder = spec.get("holderIdentity") or ""
        held_by_other = holder not in ("", self.identity)
        duration = float(spec.get("leaseDurationSeconds") or seconds)
        if held_by_other and now < self._observed_at + duration:
            return False
        if holder != self.identity:
            spec["acquireTime"] = stamp
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=seconds, renewTime=stamp)
        lease["spec"] = spec
        lease["metadata"].update(self.owner)
        try:
            updated = self.kube.replace(lease)  # carries resourceVersion: optimistic locking
        except ApiError as error:
            if error.conflict:
                return False
            raise
        self._observed, self._observed_at = self._record(updated), now
        return True

    def release(self, attempts: int = 3) -> None:
        """Give the Lease up at once (on a clean stop), so another replica need not wait."""
        for _ in range(attempts):
            lease = self.kube.get(API_VERSION, "Lease", self.namespace, self.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = dict(lease["spec"])
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=timestamps.now_micro())
            lease["spec"] = spec
            try:
                self.kube.replace(lease)
                logger.info("leader election: %s released the Lease", self.identity)
                return
            except ApiError as error:
                if not error.conflict:  # a conflict: a last renewal landed first; try again
                    logger.warning(
                        "failed to release Lease %s/%s: %s", self.namespace, self.name, error
                    )
                    return


def _pod_owner(config: OperatorConfig) -> dict[str, Any]:
    """The Lease's ``ownerReferences``: this replica's Pod, when it runs in one."""
    if not (config.pod_name and config.pod_uid):
        return {}
    pod = {"apiVersion": "v1", "kind": "Pod", "name": config.pod_name, "uid": config.pod_uid}
    return {"ownerReferences": [pod]}


async def _attempt(elector: LeaderElector, timeout: float | None = None) -> bool | None:
    """True: this replica holds the Lease; False: another one does; None: no answer (also when
    the call takes longer than ``timeout``; the thread is left to finish on its own)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(elector.try_acquire_or_renew), timeout)
    except TimeoutError:
        logger.warning("leader election: no answer from the API server within %gs", timeout)
        return None
    except Exception as error:  # the API server may be briefly away; the next attempt decides
        logger.warning("leader election: failed to update Lease: %s", error)
        return None


async def campaign(elector: LeaderElector, retry_period: float, stop: asyncio.Event) -> bool:
    """Wait until this replica holds the Lease (True) or ``stop`` is set (False)."""
    logger.info(
        "leader election: %s waiting for Lease %s/%s",
        elector.identity,
        elector.namespace,
        elector.name,
    )
    while not stop.is_set():
        if await _attempt(elector):
            logger.info("leader election: %s is the leader", elector.identity)
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry_period)
    return False


async def keep(elector: LeaderElector, retry_period: float, renew_deadline: float) -> None:
    """Renew the Lease until a renewal does not succeed within ``renew_deadline``; then return
    (the caller stops acting). A renewal still waiting for an answer at the deadline is not
    waited for."""
    loop = asyncio.get_running_loop()
    last_renewed = loop.time()
    while True:
        await asyncio.sleep(retry_period)
        remaining = last_renewed + renew_deadline - loop.time()
        held = await _attempt(elector, timeout=max(remaining, 0.0))
        if held:
            last_renewed = loop.time()
        elif held is False:
            logger.error("leader election: another replica holds the Lease now; stopping")
            return
        elif loop.time() - last_renewed >= renew_deadline:
            logger.error(
                "leader election: %s could not renew the Lease for %gs; stopping",
                elector.identity,
                renew_deadline,
            )
            return
