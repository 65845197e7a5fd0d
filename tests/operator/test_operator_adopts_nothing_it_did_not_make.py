"""An object that has a child's name but was not made for the app (someone's own Service, a
leftover of another tool) is not taken over, changed, or deleted with the app, unless the app
opts in with ``spec.adoptExisting``."""

from __future__ import annotations

from typing import Any

from channelworks_operator import spec
from channelworks_operator.kube import Kube
from tests.operator import apps
from tests.operator.conftest import OperatorFactory


def someone_elses_service(kube: Kube, namespace: str) -> dict[str, Any]:
    return kube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "chat-interface", "namespace": namespace, "labels": {"a": "b"}},
            "spec": {"selector": {"app": "theirs"}, "ports": [{"name": "http", "port": 8000}]},
        }
    )


def test_an_object_it_did_not_make_is_left_alone_and_named(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    theirs = someone_elses_service(kube, namespace)
    operators()
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    app = apps.wait_condition(kube, namespace, "Ready", "False", reason="ChildNotOwned")
    assert "Service/chat-interface" in apps.condition(app, "Ready")["message"]
    assert "spec.adoptExisting" in apps.condition(app, "Ready")["message"]
    now = kube.get("v1", "Service", namespace, "chat-interface")
    assert now is not None
    assert now["metadata"]["resourceVersion"] == theirs["metadata"]["resourceVersion"]
    assert not now["metadata"].get("ownerReferences")
    # The rest of the app is made all the same.
    apps.wait_for(kube, "apps/v1", "Deployment", namespace, "chat-interface")

    kube.delete(spec.API_VERSION, spec.KIND, namespace, "chat")
    apps.wait_gone(kube, "apps/v1", "Deployment", namespace, "chat-interface")
    assert kube.get("v1", "Service", namespace, "chat-interface") is not None


def test_with_adopt_existing_the_app_takes_it_over(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    someone_elses_service(kube, namespace)
    operators()
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url), adoptExisting=True))
    app = apps.wait_condition(kube, namespace, "Ready", "True")
    service = kube.get("v1", "Service", namespace, "chat-interface")
    assert service is not None
    apps.owned_by_the_app(service, app)
