"""What the schema accepts but the API server refuses (a child's own schema) shows as a condition
with a reason: no crash loop, no retry storm, and it heals by itself once fixed. (Missing
Secrets as reasons, one after the other, and their healing are run in process against a fake of
the adapter: tests/operator/test_reconcile_logic_runs_in_process.py; the retry pacing in
test_one_scheduler_retries_by_the_error.py.)"""

from __future__ import annotations

from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory


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
