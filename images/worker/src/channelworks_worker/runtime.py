"""The worker loop: take messages from the layer, run their consumers, acknowledge them.

- Messages come from ``layer.work_receiver(channels)``: per connection (``reply_channel``) the next
  message is handed out only after the previous one is acknowledged, so the events of one
  connection run one at a time and in order; different connections run in parallel.
- At most ``concurrency`` messages are in flight: a message is only taken when a slot is free.
  Sync consumers run in that many threads (consumer_threads), ``async def`` ones on the loop.
- A consumer that raises — anything, ``SystemExit`` and ``KeyboardInterrupt`` included — is logged
  (channel, route, traceback) and counted as ``error``; a message no route matches is logged once
  and counted as ``unrouted``. Both are acknowledged (dropped): redelivering them would fail the
  same way. The worker carries on.
- Before running a message the worker counts the hand-out in the layer (``delivery.start()``); a
  message handed out again after its worker died is judged by :mod:`safeguards`: a non-idempotent
  ``http.request`` is answered 502 and not run twice, a message handed out more than
  ``max_deliveries`` times goes to the dead-letter channel.
- A message still running after ``time_limit`` seconds is given up (dead-lettered, its connection
  answered, acknowledged so its connection moves on); a sync consumer's thread is abandoned and
  replaced. When every thread is stuck the worker is no longer live and stops itself.
- :meth:`Worker.stop` (SIGTERM): take nothing new, let in-flight messages finish (up to
  ``drain_seconds``), return. Messages still running then are not acknowledged; a layer that
  redelivers (Redis) hands them to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from channelworks import dispatch, exceptions, routing
from channelworks.layers import base, naming, ordering
from channelworks_worker import consumer_threads, deadlines, safeguards
from channelworks_worker import metrics as metrics_module

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.25
RETRY_SECONDS = 1.0
RECEIVER_STOP_SECONDS = 2.0
CANCEL_GRACE_SECONDS = 1.0


def select_channels(
    routed: Iterable[str], only: Iterable[str] = (), exclude: Iterable[str] = ()
) -> list[str]:
    """The channels to take: the routed ones (or ``only``), less ``exclude``."""
    chosen = set(only) or set(routed)
    chosen -= set(exclude)
    if not chosen:
        raise exceptions.ConfigurationError(
            "the worker has no channels to take (check the routing and the channel filters)"
        )
    return sorted(chosen)


class Worker:
    """Runs the consumers of ``router`` for messages on ``channels`` of ``layer``."""

    def __init__(
        self,
        layer: base.ChannelworksLayer,
        router: routing.Router,
        metrics: metrics_module.WorkerMetrics,
        concurrency: int = 16,
        channels: Iterable[str] | None = None,
        drain_seconds: float = 25.0,
        limits: safeguards.Safeguards | None = None,
    ) -> None:
        if concurrency < 1:
            raise exceptions.ConfigurationError(
                f"concurrency must be at least 1, got {concurrency}"
            )
        self._layer = layer
        self._router = router
        self._metrics = metrics
        self._concurrency = concurrency
        self._channels = select_channels(router.channels if channels is None else channels)
        self._drain_seconds = drain_seconds
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = False
        self._layer_ok = True
        self._limits = limits or safeguards.Safeguards()
        self._threads: consumer_threads.ConsumerThreads | None = None
        self._deadlines = deadlines.Deadlines()

    @property
    def channels(self) -> list[str]:
        return list(self._channels)

    @property
    def ready(self) -> bool:
        """True while messages are being taken (what ``/readyz`` reports): started, not stopping,
        and the last attempt to take a message reached the layer."""
        return self._ready and self._layer_ok and not self._stopping.is_set() and self.live

    @property
    def live(self) -> bool:
        """False once every consumer thread is stuck past the time limit (what ``/healthz``
        reports besides the loop answering): such a worker can take no more work."""
        return self._threads is None or not self._threads.wedged

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stop(self) -> None:
        """Take nothing new and return from :meth:`run` once in-flight work is done.

        Call on the worker's loop (a signal handler installed with ``loop.add_signal_handler``
        is); from another thread use ``loop.call_soon_threadsafe(worker.stop)``.
        """
        if not self._stopping.is_set():
            logger.info("stopping: taking no new messages, finishing %d in flight", self.in_flight)
        self._stopping.set()

    async def run(self) -> None:
        """Take and handle messages until :meth:`stop`; then drain and return."""
        threads = consumer_threads.ConsumerThreads(
            asyncio.get_running_loop(), self._concurrency, "channelworks-consumer"
        )
        self._threads = threads
        runner = dispatch.Runner(self._router, self._layer, executor=threads)
        slots = asyncio.Semaphore(self._concurrency)
        self._metrics.concurrency.set(self._concurrency)
        # Read when scraped, not counted per message: the tasks of messages not yet acked.
        self._metrics.in_flight.set_function(lambda: len(self._tasks))
        self._metrics.stuck_threads.set_function(lambda: threads.stuck)
        receiver = self._layer.work_receiver(self._channels)
        logger.info(
            "taking messages on %s, %d at a time", ", ".join(self._channels), self._concurrency
        )
        self._ready = True
        watcher = asyncio.create_task(self._deadlines.watch())
        try:
            await self._take(receiver, runner, slots)
        finally:
            self._ready = False
            # The receiver stops taking at once and waits for acks while the in-flight work ends.
            stopping = asyncio.create_task(receiver.stop())
            await self._drain()
            try:
                await asyncio.wait_for(stopping, RECEIVER_STOP_SECONDS)
            except TimeoutError:
                logger.warning("the layer's receiver did not stop in time; its leases will expire")
            threads.shutdown()
            watcher.cancel()
            logger.info("worker stopped")

    async def _take(self, receiver: Any, runner: dispatch.Runner, slots: asyncio.Semaphore) -> None:
        while not self._stopping.is_set():
            await slots.acquire()
            delivery = None
            try:
                if not self._stopping.is_set():
                    delivery = await receiver.get(timeout=POLL_SECONDS)
                    self._layer_ok = True
            except Exception as error:
                self._layer_ok = False
                logger.error(
                    "taking a message failed (%s); retrying in %.0fs", error, RETRY_SECONDS
                )
                await self._pause(RETRY_SECONDS)
            if delivery is None:
                slots.release()
                continue
            task = asyncio.create_task(self._handle(runner, delivery, slots))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _handle(
        self, runner: dispatch.Runner, delivery: ordering.Delivery, slots: asyncio.Semaphore
    ) -> None:
        started = time.monotonic()
        try:
            status = await self._settle(runner, delivery)
            try:
                await delivery.ack()
            except Exception:
                logger.exception("acknowledging a message on %s failed", delivery.channel)
            self._metrics.observe(delivery.channel, status, time.monotonic() - started)
        finally:  # also when cancelled at the end of a drain: then it is not acknowledged
            slots.release()

    async def _settle(self, runner: dispatch.Runner, delivery: ordering.Delivery) -> str:
        """Run the message, or answer for it; the outcome to count."""
        channel, message = delivery.channel, delivery.message
        at_most_once = channel == safeguards.HTTP_CHANNEL and not self._limits.may_retry(message)
        try:
            number = await delivery.start(exact=at_most_once)
        except Exception as error:
            if at_most_once:
                # Unknown whether it ran before: do not risk running it twice.
                logger.error("cannot count a delivery on %s (%s); answering 502", channel, error)
                await self._answer(safeguards.answer_not_retried(message))
                return "not_retried"
            number = 1
        verdict = self._limits.verdict(channel, message, number)
        if verdict is safeguards.Verdict.NOT_RETRIED:
            logger.error(
                "a %s request on %s was handed out again (delivery %d): the worker running it "
                "stopped; answering 502 instead of running it twice",
                message.get("method"),
                channel,
                number,
                extra={"channel": channel},
            )
            self._metrics.http_not_retried.inc()
            await self._answer(safeguards.answer_not_retried(message))
            return "not_retried"
        if verdict is safeguards.Verdict.DEAD_LETTER:
            await self._give_up(delivery, number, safeguards.REASON_MAX_DELIVERIES)
            return "dead_letter"
        outcome = await self._run_limited(runner, delivery)
        if outcome is None:
            await self._give_up(delivery, number, safeguards.REASON_TIME_LIMIT)
            self._check_wedged()
            return "timeout"
        self._report(outcome, delivery)
        return outcome.status

    async def _run_limited(
        self, runner: dispatch.Runner, delivery: ordering.Delivery
    ) -> dispatch.Outcome | None:
        """The outcome of running the consumer, or None when it outlived the time limit (it is
        then cancelled: an async one at its next await, a sync one's thread is abandoned).

        A sync consumer's call is awaited in this task, under a deadline the worker's one
        watcher enforces (:mod:`deadlines`; cheaper than an ``asyncio.timeout`` per message):
        giving up on it abandons its thread at once, so it needs no task of its own nor
        ``asyncio.wait`` (two of the per-message costs a profile of the echo load showed). An
        async consumer runs in a task of its own, so one that ignores its cancellation is left
        behind after a grace period instead of holding this slot."""
        channel = delivery.channel
        limit = self._limits.time_limit_for(channel)
        try:
            message, found = runner.resolve(channel, delivery.message)
        except Exception as error:  # a fault of the runtime itself, not of the consumer
            return dispatch.Outcome(channel, "error", None, error)
        if found is None:
            return dispatch.Outcome(channel, "unrouted")
        if not runner.runs_on_the_loop(found):
            task = self._deadlines.start(limit)
            try:
                return await runner.run(channel, message, found, self._acks_with(delivery))
            except asyncio.CancelledError:
                if self._deadlines.expired(task):
                    return None
                raise
            except Exception as error:
                return dispatch.Outcome(channel, "error", None, error)
            finally:
                self._deadlines.end(task)
        running = asyncio.create_task(
            runner.run(channel, message, found, self._acks_with(delivery))
        )
        try:
            done, _ = await asyncio.wait({running}, timeout=limit)
        except asyncio.CancelledError:
            running.cancel()
            raise
        if not done:
            running.cancel()
            # The async consumer gets a moment to unwind (one that ignores cancellation is left
            # behind).
            await asyncio.wait({running}, timeout=CANCEL_GRACE_SECONDS)
            return None
        try:
            return running.result()
        except Exception as error:  # a fault of the runtime itself, not of the consumer
            return dispatch.Outcome(delivery.channel, "error", None, error)

    def _acks_with(self, delivery: ordering.Delivery) -> Callable[[dispatch.Held], None]:
        """What to do once a message's consumer returned, before its held sends go out: when
        they are a single reply to a connection (what most consumers send), queue the ack so
        it goes out in the reply's pipeline, behind it (a Redis round trip and a write fewer per
        message). A reply to a process-specific channel is queued at once; sends that may wait
        for Redis first (a normal channel's shard layout, a group's history) or several sends
        (the ack would go out behind the first only) leave the ack for after them."""
        layer = self._layer

        def before_sends(held: dispatch.Held) -> None:
            if len(held) == 1:
                reply = held[0]
                if (
                    reply.kind == "channel"
                    and reply.layer is layer
                    and naming.is_process_specific(reply.name)
                ):
                    delivery.queue_ack()

        return before_sends

    async def _give_up(self, delivery: ordering.Delivery, number: int, reason: str) -> None:
        """Send the message to the dead-letter channel, count it, answer its connection."""
        channel, message = delivery.channel, delivery.message
        if reason == safeguards.REASON_TIME_LIMIT:
            limit = self._limits.time_limit_for(channel)
            why = f"its consumer ran past the time limit of {limit:g}s"
        else:
            why = f"it was handed out {number} times without being acknowledged"
        logger.error(
            "giving up on a message on %s: %s; sent to %s",
            channel,
            why,
            self._limits.dead_letter_channel,
            extra={"channel": channel, "reason": reason},
        )
        self._metrics.dead_letters.labels(channel=channel, reason=reason).inc()
        try:
            await self._layer.send(
                self._limits.dead_letter_channel,
                safeguards.dead_letter(channel, message, number, reason),
            )
        except Exception as error:
            logger.error("could not send to %s: %s", self._limits.dead_letter_channel, error)
        await self._answer(safeguards.answer_for_given_up(channel, message))

    async def _answer(self, reply: tuple[str, dict[str, Any]] | None) -> None:
        if reply is None:
            return
        try:
            await self._layer.send(*reply)
        except Exception as error:  # the client may be gone: its reply channel full or expired
            logger.warning("could not answer on %s: %s", reply[0], error)

    def _check_wedged(self) -> None:
        if self.live or self._stopping.is_set():
            return
        logger.error(
            "all %d consumer threads are stuck past the time limit; this worker can take no "
            "more work: stopping so other workers take its shards",
            self._concurrency,
        )
        self.stop()

    @staticmethod
    def _report(outcome: dispatch.Outcome, delivery: ordering.Delivery) -> None:
        if outcome.error is None and outcome.status != "unrouted":
            return
        extra = {"channel": outcome.channel, "route": outcome.route or "-"}
        if outcome.status == "unrouted":
            logger.warning(
                "no route for a message on %s (fields: %s); dropped",
                outcome.channel,
                ", ".join(sorted(delivery.message)),
                extra=extra,
            )
        elif outcome.error is not None:
            error = outcome.error
            logger.error(
                "consumer failed on %s (route %s): %s: %s",
                outcome.channel,
                outcome.route or "-",
                type(error).__name__,
                error,
                exc_info=(type(error), error, error.__traceback__),
                extra=extra,
            )

    async def _drain(self) -> None:
        if not self._tasks:
            return
        running = set(self._tasks)
        logger.info(
            "waiting up to %.0fs for %d in-flight messages", self._drain_seconds, len(running)
        )
        _, late = await asyncio.wait(running, timeout=self._drain_seconds)
        if late:
            logger.warning(
                "%d messages still running after %.0fs; left unacknowledged for redelivery",
                len(late),
                self._drain_seconds,
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
