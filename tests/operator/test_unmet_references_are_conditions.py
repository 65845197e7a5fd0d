"""What the schema accepts but the operator cannot honour shows as a condition with a reason:
no crash loop, no retry storm, and it heals by itself once fixed."""

from __future__ import annotations

import time

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually

WATCH_SECONDS = 9.0


def test_missing_pull_secret_and_password_secret_are_reasons_until_they_exist(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operator = operators()
    fields = apps.external(redis_url, imagePullSecrets=[{"name": "registry"}])
    fields["channelLayer"]["redis"]["passwordSecretRef"] = {"name": "redis-auth"}
    apps.apply(kube, apps.manifest(namespace, **fields))

    app = apps.wait_condition(kube, namespace, "Ready", "False", reason="SecretNotFound")
    assert "redis-auth" in apps.condition(app, "Ready")["message"]
    assert app["status"]["phase"] in ("Pending", "Degraded")
    # The children are made anyway (the migration Job first, whose pod waits for the Secrets on
    # a real node; kwok runs it at once), so everything starts as soon as the Secrets appear.
    apps.wait_for(kube, "apps/v1", "Deployment", namespace, "chat-worker")

    # Retries are paced (3 s in the tests): a handful in the window, not a storm.
    before = operator.reconciles()
    time.sleep(WATCH_SECONDS)
    assert operator.reconciles() - before <= 2 * WATCH_SECONDS / 3 + 2
    assert operator.running

    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis-auth", "namespace": namespace},
            "stringData": {"password": ""},
        }
    )
    app = apps.wait_condition(kube, namespace, "Ready", "False", reason="ImagePullSecretNotFound")
    assert "registry" in apps.condition(app, "Ready")["message"]
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "registry", "namespace": namespace},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": '{"auths": {}}'},
        }
    )
    apps.wait_condition(kube, namespace, "Ready", "True")
    eventually(lambda: apps.events(kube, namespace, "SecretNotFound"), timeout=10)


def test_a_child_the_api_server_refuses_is_reported_not_retried_in_a_loop(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    # The schema lets affinity through as it is; the Deployment's own schema does not.
    bad = {"interface": {"affinity": {"nodeAffinity": {"requiredDuringScheduling": "soon"}}}}
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **bad)))
    app = apps.wait_condition(kube, namespace, "Ready", "False", reason="ApplyRejected")
    message = apps.condition(app, "Ready")["message"]
    assert "Deployment/chat-interface" in message
    # The rest of the app is there.
    assert kube.get("apps/v1", "Deployment", namespace, "chat-worker") is not None
    fixed = apps.manifest(namespace, **apps.external(redis_url))
    apps.apply(kube, fixed)
    apps.wait_condition(kube, namespace, "Ready", "True")
