"""spec.django.migrate, decided and built without a cluster: the migration Job of an image (the
workers' pod with Django's migrate as its command), the decision to run it, to wait for it or to
roll, the Deployments held at their release meanwhile, and what the status says."""

from __future__ import annotations

from typing import Any

from channelworks_operator import builders, release, spec, status
from channelworks_operator.builders import meta, migrate
from channelworks_operator.conditions import Condition
from tests.operator import samples

OLD = "registry.example/chat-worker:1.4"
NEW = "registry.example/chat-worker:1.5"


def app(image: str = NEW, **fields: Any) -> spec.App:
    return spec.parse(samples.app_body(spec_fields={"image": image, **fields}))


def worker_of(parsed: spec.App) -> dict[str, Any]:
    found = samples.by_kind(builders.desired(parsed, samples.context()))
    return found[f"Deployment/{meta.worker_name(parsed.ref)}"]


def job_state(parsed: spec.App, image: str, state: str, **more: str) -> release.JobState:
    return release.JobState(migrate.job_name(parsed.ref, image), image, state, **more)


def test_the_job_is_the_worker_pod_running_django_migrate_with_the_new_image() -> None:
    parsed = app(
        django={
            "settingsModule": "chat.settings",
            "env": [{"name": "DATABASE_HOST", "value": "db"}],
            "envFrom": [{"secretRef": {"name": "chat-database"}}],
        },
        serviceAccountName="chat",
        imagePullSecrets=[{"name": "registry"}],
    )
    worker = worker_of(parsed)["spec"]["template"]["spec"]
    job = migrate.job(parsed, worker_of(parsed))
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    worker_container = worker["containers"][0]

    assert container["image"] == NEW
    assert container["command"] == ["python", "-m", "django", "migrate", "--noinput"]
    # The workers' settings, Secrets and hardening, as they are.
    for key in ("env", "envFrom", "securityContext", "resources", "volumeMounts"):
        assert container[key] == worker_container[key], key
    assert {"name": "DATABASE_HOST", "value": "db"} in container["env"]
    assert {"name": "DJANGO_SETTINGS_MODULE", "value": "chat.settings"} in container["env"]
    for key in ("securityContext", "serviceAccountName", "imagePullSecrets", "volumes"):
        assert pod[key] == worker[key], key
    assert "ports" not in container and "readinessProbe" not in container
    assert pod["restartPolicy"] == "Never"
    # One attempt, a deadline, a TTL, and deleted with the app.
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 600
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert job["metadata"]["ownerReferences"][0]["uid"] == samples.UID
    assert job["metadata"]["annotations"][migrate.IMAGE_ANNOTATION] == NEW


def test_the_job_name_follows_the_image_and_fits_a_label() -> None:
    parsed = app()
    assert migrate.job_name(parsed.ref, NEW) == migrate.job_name(parsed.ref, NEW)
    assert migrate.job_name(parsed.ref, NEW) != migrate.job_name(parsed.ref, OLD)
    longest = spec.parse(samples.app_body("a" * spec.MAX_NAME_LENGTH))
    assert len(migrate.job_name(longest.ref, NEW)) <= 63


def test_the_command_and_limits_can_be_set() -> None:
    parsed = app(
        django={
            "migrate": {
                "command": ["sh", "-c", "python manage.py migrate && python manage.py seed"],
                "timeoutSeconds": 120,
                "ttlSecondsAfterFinished": 600,
            }
        }
    )
    job = migrate.job(parsed, worker_of(parsed))
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][0] == "sh"
    assert job["spec"]["activeDeadlineSeconds"] == 120
    assert job["spec"]["ttlSecondsAfterFinished"] == 600


def test_a_new_image_makes_its_job_and_holds_the_rollout() -> None:
    parsed = app()
    plan = release.plan(parsed, {"releasedImage": OLD}, [])
    assert plan.create_job and not plan.released
    assert plan.condition.reason == release.RUNNING
    assert plan.status == {
        "image": NEW,
        "job": migrate.job_name(parsed.ref, NEW),
        "state": "Running",
        "releasedImage": OLD,
    }


def test_a_running_job_is_waited_for_and_not_made_again() -> None:
    parsed = app()
    plan = release.plan(parsed, {}, [job_state(parsed, NEW, release.STATE_RUNNING)])
    assert not plan.create_job and not plan.released
    assert plan.condition.reason == release.RUNNING


def test_a_succeeded_job_releases_the_image_for_good() -> None:
    parsed = app()
    plan = release.plan(parsed, {}, [job_state(parsed, NEW, release.STATE_SUCCEEDED)])
    assert plan.released and not plan.create_job
    assert plan.condition.true and plan.condition.reason == release.DONE
    assert plan.status is not None and plan.status["releasedImage"] == NEW
    # Its Job deleted after the TTL: the status remembers, nothing runs again.
    again = release.plan(parsed, plan.status, [])
    assert again.released and not again.create_job


def test_a_failed_job_holds_the_release_and_shows_its_log() -> None:
    parsed = app()
    failed = job_state(
        parsed, NEW, release.STATE_FAILED, reason="BackoffLimitExceeded", message="limit reached"
    )
    log = "Applying rooms.0002_broken...\ndjango.db.utils.ProgrammingError: boom"
    plan = release.plan(parsed, {"releasedImage": OLD}, [failed], log)
    assert not plan.released and not plan.create_job
    assert not plan.condition.true and plan.condition.reason == release.FAILED
    assert "BackoffLimitExceeded" in plan.condition.message
    assert plan.condition.message.endswith("ProgrammingError: boom")
    assert plan.status is not None and plan.status["releasedImage"] == OLD


def test_never_two_jobs_at_once() -> None:
    parsed = app()
    earlier = job_state(parsed, OLD, release.STATE_RUNNING)
    plan = release.plan(parsed, {}, [earlier])
    assert not plan.create_job and not plan.released
    assert plan.condition.reason == release.WAITING
    assert earlier.name in plan.condition.message
    # A finished Job of an earlier image is no reason to wait.
    done = job_state(parsed, OLD, release.STATE_FAILED)
    assert release.plan(parsed, {}, [done]).create_job


def test_migrations_off_roll_at_once() -> None:
    plan = release.plan(app(django={"migrate": {"enabled": False}}), {}, [])
    assert plan.released and not plan.create_job and plan.status is None
    assert plan.condition.reason == release.DISABLED


def test_held_deployments_keep_their_running_template() -> None:
    parsed = app(interface={"replicas": 3})
    manifests = builders.desired(parsed, samples.context(worker_replicas=4))
    running = worker_of(app(OLD))
    running["spec"]["template"]["metadata"]["annotations"] = {"restarted": "yes"}
    worker_key = f"Deployment/demo/{meta.worker_name(parsed.ref)}"
    held = samples.by_kind(release.hold(manifests, {worker_key: running}))
    worker = held[f"Deployment/{meta.worker_name(parsed.ref)}"]
    assert worker["spec"]["template"] == running["spec"]["template"]  # the old image stays
    assert worker["spec"]["replicas"] == 4  # the autoscaler's count is still applied
    assert f"Deployment/{meta.interface_name(parsed.ref)}" not in held  # not made before
    assert f"Service/{meta.interface_name(parsed.ref)}" in held


def _observation(migration: Condition, workloads: bool) -> status.Observation:
    up = status.Workload(2, 2, 2, 2, 2, True) if workloads else None
    layer = Condition("ChannelLayerReady", "True", "Ready", "ok")
    return status.Observation(
        interface=up,
        worker=up,
        desired_workers=2,
        layer=layer,
        layer_nodes=1,
        layer_ready_nodes=1,
        layer_url="redis://x",
        autoscaling=Condition("Autoscaling", "True", "Stable", "ok"),
        autoscaler=None,
        queue_depth=0,
        oldest_age_seconds=0.0,
        migration=migration,
        migration_status={"image": NEW, "job": "j", "state": "Failed"},
    )


def test_the_status_says_a_failed_migration_keeps_the_old_release() -> None:
    failed = Condition("Migrated", "False", release.FAILED, "Job j failed ... boom")
    built = status.build(
        app(), _observation(failed, workloads=True), {}, now="2026-12-06T07:00:00Z"
    )
    by_type = {c["type"]: c for c in built["conditions"]}
    assert by_type["Ready"]["status"] == "False"
    assert by_type["Ready"]["reason"] == release.FAILED
    assert by_type["Migrated"]["message"] == "Job j failed ... boom"
    assert built["phase"] == status.DEGRADED  # the old pods still serve
    assert built["migration"]["state"] == "Failed"
    # While an update migrates, the running release stays Ready.
    running = Condition("Migrated", "False", release.RUNNING, "Job j runs")
    built = status.build(
        app(), _observation(running, workloads=True), {}, now="2026-12-06T07:00:00Z"
    )
    assert {c["type"]: c for c in built["conditions"]}["Ready"]["status"] == "True"
    # A new app: nothing runs before its first migration.
    built = status.build(
        app(), _observation(running, workloads=False), {}, now="2026-12-06T07:00:00Z"
    )
    assert {c["type"]: c for c in built["conditions"]}["Ready"]["reason"] == release.RUNNING


def test_the_event_of_a_failed_migration_keeps_the_end_of_the_log() -> None:
    parsed = app()
    failed = job_state(parsed, NEW, release.STATE_FAILED, reason="BackoffLimitExceeded")
    log = "\n".join(f"  File 'x.py', line {n}, in frame" for n in range(40))
    log += "\nModuleNotFoundError: No module named 'settings_missing'"
    condition = release.plan(parsed, {}, [failed], release.log_tail(log)).condition
    assert len(condition.message.splitlines()) == 1 + release.LOG_LINES
    event = release.event_message(f"Migrated: {condition.message}", 1024)
    assert len(event) <= 1024
    assert event.startswith(f"Migrated: Job {failed.name} failed (BackoffLimitExceeded)")
    assert event.endswith("No module named 'settings_missing'")
