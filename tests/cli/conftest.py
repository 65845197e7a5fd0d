"""Fixtures of the CLI tests: the RealtimeApp CRD (charts/channelworks/crds/) on the real
control plane, served and ready for objects."""

from __future__ import annotations

from typing import Any

import kubernetes
import pytest

from tests.operator import crd
from tests.support.eventually import eventually

GROUP, VERSION, PLURAL = "channelworks.dev", "v1alpha1", "realtimeapps"
ESTABLISH_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def realtimeapp_crd(kube_api: kubernetes.client.ApiClient) -> dict[str, Any]:
    """The CRD as the chart ships it, created unless it is there, and served."""
    extensions = kubernetes.client.ApiextensionsV1Api(kube_api)
    document = crd.load()
    try:
        extensions.create_custom_resource_definition(document)  # type: ignore[arg-type]
    except kubernetes.client.ApiException as error:
        if error.status != 409:
            raise
    objects = kubernetes.client.CustomObjectsApi(kube_api)

    def served() -> None:
        found = objects.get_api_resources(GROUP, VERSION)
        assert any(resource.name == PLURAL for resource in found.resources)
        objects.list_cluster_custom_object(GROUP, VERSION, PLURAL)

    eventually(
        served,
        timeout=ESTABLISH_TIMEOUT,
        interval=0.2,
        message="realtimeapps served",
        retry_on=(AssertionError, kubernetes.client.ApiException),
    )
    return document
