"""The migration Job of an image (pure): ``spec.django.migrate.command`` run once with the app's
image, before the Deployments roll to it.

The Job's pod is the worker pod with another command: the same environment (channel layer,
``DJANGO_SETTINGS_MODULE``, ``django.env``/``envFrom``: database settings and Secrets), service
account, pull secrets, placement, security context, resources and writable ``/tmp``. It is made
from the worker Deployment's manifest, so what the workers get, it gets. One attempt
(``backoffLimit: 0``; a pod evicted or preempted does not count), a deadline, a TTL after it
finished, owned by the app.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from channelworks_operator import spec
from channelworks_operator.builders import meta

Manifest = meta.Manifest

IMAGE_ANNOTATION = "channelworks.dev/image"
CONTAINER = "migrate"
# Kept out of the Job's pod: it does not serve, is not probed and is not spread like a worker.
_WORKER_ONLY = ("ports", "startupProbe", "livenessProbe", "readinessProbe")


def job_name(app: spec.AppRef, image: str) -> str:
    """``<app>-migrate-<8 hex digits of the image's SHA-256>``: one name per image (at most 63
    characters for the longest app name, as the Job's pod label needs)."""
    digest = hashlib.sha256(image.encode()).hexdigest()[:8]
    return f"{app.name}-migrate-{digest}"


def job(app: spec.App, worker_deployment: Manifest) -> Manifest:
    """The Job that migrates the database for ``app.image``, from the workers' Deployment."""
    template = copy.deepcopy(worker_deployment["spec"]["template"])
    pod = template["spec"]
    container = pod["containers"][0]
    for key in _WORKER_ONLY:
        container.pop(key, None)
    container["name"] = CONTAINER
    container["image"] = app.image
    container["command"] = list(app.migrate.command)
    pod.pop("topologySpreadConstraints", None)
    pod["restartPolicy"] = "Never"
    pod["terminationGracePeriodSeconds"] = 30
    name = job_name(app.ref, app.image)
    labels = meta.labels(app.ref, meta.MIGRATE)
    template["metadata"] = {**template.get("metadata", {}), "labels": labels}
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": app.migrate.timeout_seconds,
        "ttlSecondsAfterFinished": app.migrate.ttl_seconds_after_finished,
        # A pod taken away by the cluster (eviction, preemption, a node drain) is not a failed
        # migration: the Job starts another.
        "podFailurePolicy": {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
        },
        "template": template,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta.metadata(
            app.ref, name, meta.MIGRATE, annotations={IMAGE_ANNOTATION: app.image}
        ),
        "spec": job_spec,
    }
