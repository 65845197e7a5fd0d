"""Migrations before a rollout (pure): whether the Deployments may roll to the spec's image, and
which migration Job to make (``spec.django.migrate``).

A new ``spec.image`` (or a new app) is *released* once the migration Job of that image
succeeded; ``status.migration.releasedImage`` remembers it, so a Job removed after its TTL is not
run again. Until then the interface and worker Deployments keep the pod template they run (the
previous release; replica counts still follow the autoscaler), and a Deployment that does not
exist yet is not made. One Job per image (``builders.migrate.job_name``), never two at once: a
Job still running for an earlier image is waited for. A failed Job is not run again while it
exists: its condition carries its last log lines until a new image is set or the Job is deleted
(by a person, or by its TTL).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channelworks_operator import conditions, spec
from channelworks_operator.builders import meta
from channelworks_operator.builders.migrate import IMAGE_ANNOTATION, job_name
from channelworks_operator.conditions import Condition

MIGRATED = conditions.MIGRATED
# Reasons of the Migrated condition.
DONE = "Migrated"
RUNNING = "Migrating"
FAILED = "MigrationFailed"
WAITING = "WaitingForMigration"
DISABLED = "MigrationDisabled"
# status.migration.state
STATE_WAITING = "Waiting"
STATE_RUNNING = "Running"
STATE_SUCCEEDED = "Succeeded"
STATE_FAILED = "Failed"
LOG_LINES = 20
LOG_CHARACTERS = 3000


@dataclass(frozen=True)
class JobState:
    """A migration Job as observed: its state and, when it failed, why."""

    name: str
    image: str
    state: str
    reason: str = ""
    message: str = ""

    @classmethod
    def of(cls, job: Mapping[str, Any]) -> JobState:
        metadata = job.get("metadata", {})
        image = str((metadata.get("annotations") or {}).get(IMAGE_ANNOTATION, ""))
        found = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or []}
        for kind, state in (("Complete", STATE_SUCCEEDED), ("Failed", STATE_FAILED)):
            condition = found.get(kind)
            if condition is not None and condition.get("status") == "True":
                reason, message = condition.get("reason", ""), condition.get("message", "")
                return cls(str(metadata.get("name")), image, state, str(reason), str(message))
        return cls(str(metadata.get("name")), image, STATE_RUNNING)

    @property
    def finished(self) -> bool:
        return self.state in (STATE_SUCCEEDED, STATE_FAILED)


@dataclass(frozen=True)
class Plan:
    """What this run does about migrations."""

    released: bool  # the Deployments may roll to the spec; else they are held
    create_job: bool  # make the Job of spec.image now
    condition: Condition
    status: Mapping[str, str] | None  # status.migration (None: migrations are off)


def plan(
    app: spec.App,
    previous: Mapping[str, Any] | None,
    jobs: Sequence[JobState],
    failure_log: str | None = None,
) -> Plan:
    """Decide from the app, its previous ``status.migration`` and its migration Jobs."""
    if not app.migrate.enabled:
        message = "spec.django.migrate.enabled is false: the operator runs no migrations"
        return Plan(True, False, conditions.true(MIGRATED, DISABLED, message), None)
    previous = previous or {}
    image = app.image
    name = job_name(app.ref, image)
    released_before = str(previous.get("releasedImage") or "")

    def status(state: str, released: str = released_before) -> dict[str, str]:
        found = {"image": image, "job": name, "state": state}
        return {**found, "releasedImage": released} if released else found

    mine = next((job for job in jobs if job.name == name), None)
    if released_before == image or (mine is not None and mine.state == STATE_SUCCEEDED):
        message = f"the migrations of {image} ran (Job {name})"
        done = conditions.true(MIGRATED, DONE, message)
        return Plan(True, False, done, status(STATE_SUCCEEDED, image))
    if mine is not None and mine.state == STATE_FAILED:
        message = failure_message(mine, failure_log)
        return Plan(False, False, conditions.false(MIGRATED, FAILED, message), status(STATE_FAILED))
    if mine is not None:
        message = f"Job {name} runs the migrations of {image}; the rollout waits for it"
        running = conditions.false(MIGRATED, RUNNING, message)
        return Plan(False, False, running, status(STATE_RUNNING))
    earlier = sorted(job.name for job in jobs if not job.finished)
    if earlier:
        message = (
            f"Job {', '.join(earlier)} of an earlier image still runs; the migrations of {image} "
            "start when it has ended (never two at once)"
        )
        waiting = conditions.false(MIGRATED, WAITING, message)
        return Plan(False, False, waiting, status(STATE_WAITING))
    message = f"Job {name} runs the migrations of {image}; the rollout waits for it"
    return Plan(False, True, conditions.false(MIGRATED, RUNNING, message), status(STATE_RUNNING))


def failure_message(job: JobState, log: str | None) -> str:
    why = f"{job.reason}: {job.message}" if job.message else job.reason or "failed"
    text = (
        f"Job {job.name} failed ({why}); the pods keep running the previous release. Set a "
        f"fixed spec.image, or delete the Job to run it again."
    )
    if log is None:
        return text
    return f"{text}{LOG_HEADING}{log}"


LOG_HEADING = " Last log lines:\n"


def event_message(message: str, limit: int) -> str:
    """A Migrated message cut to ``limit`` characters (an Event's size) keeping its first
    sentence and the end of the log, where the error is."""
    if len(message) <= limit or LOG_HEADING not in message:
        return message[:limit]
    head, log = message.split(LOG_HEADING, 1)
    room = max(0, limit - len(head) - len(LOG_HEADING) - 1)
    return f"{head}{LOG_HEADING}…{log[-room:]}" if room else head[:limit]


def log_tail(text: str) -> str:
    """The last lines of a log, at most ``LOG_LINES`` and ``LOG_CHARACTERS``."""
    lines = text.rstrip("\n").splitlines()[-LOG_LINES:]
    return "\n".join(lines)[-LOG_CHARACTERS:]


def _component(manifest: Mapping[str, Any]) -> Any:
    return manifest.get("metadata", {}).get("labels", {}).get(meta.COMPONENT_LABEL)


def rolled(manifest: Mapping[str, Any]) -> bool:
    """Whether a manifest is a Deployment of the app's pods that a rollout waits with (the
    interface's, the workers' of every pool)."""
    return manifest.get("kind") == "Deployment" and _component(manifest) in (
        meta.INTERFACE,
        meta.WORKER,
    )


def worker_deployment(manifests: Iterable[meta.Manifest]) -> meta.Manifest:
    """The (first) worker Deployment: what the migration Job's pod is made from."""
    return next(m for m in manifests if rolled(m) and _component(m) == meta.WORKER)


def hold(
    manifests: Iterable[meta.Manifest], live: Mapping[str, Mapping[str, Any]]
) -> list[meta.Manifest]:
    """The manifests with the interface and worker Deployments held at the release they run:
    each keeps the pod template it has (``live``, by ``meta.object_key``); one that does not
    exist yet is left out."""
    held: list[meta.Manifest] = []
    for manifest in manifests:
        if not rolled(manifest):
            held.append(manifest)
            continue
        running = live.get(meta.object_key(manifest))
        if running is None:
            continue
        kept = copy.deepcopy(manifest)
        kept["spec"]["template"] = copy.deepcopy(running["spec"]["template"])
        held.append(kept)
    return held
