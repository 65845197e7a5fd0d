"""When the operator stops acting, it marks the apps whose status nobody keeps current any more.

Each RealtimeApp it watches gets ``Ready=Unknown`` (reason ``OperatorStopped``) and phase
``Unknown``, so ``kubectl get rtapp`` does not go on showing a ``Ready=True`` that no one checks.
The next replica to take the Lease reconciles every app and writes the whole status again.
"""

from __future__ import annotations

import logging
from typing import Any

from channelworks_operator import spec, status, timestamps
from channelworks_operator.config import OperatorConfig
from channelworks_operator.exceptions import ApiError
from channelworks_operator.kube import Kube

logger = logging.getLogger(__name__)


def mark_apps(kube: Kube, config: OperatorConfig) -> int:
    """Mark every watched app that has a status; returns how many were marked. API errors are
    logged, not raised: the operator is stopping either way."""
    message = (
        f"the operator {config.identity} stopped; this status is not kept current until an "
        "operator acts again"
    )
    marked = 0
    for namespace in config.namespaces or (None,):
        try:
            found = kube.list(spec.API_VERSION, spec.KIND, namespace)
        except ApiError as error:
            logger.warning("could not mark RealtimeApps as unattended: %s", error)
            continue
        for obj in found:
            previous = obj.get("status")
            if not previous:
                continue
            new_status = status.unattended(previous, message, now=timestamps.now())
            if status.same(new_status, previous):
                continue
            try:
                kube.apply(status.manifest(obj, new_status), subresource="status")
            except ApiError as error:
                logger.warning("could not mark %s as unattended: %s", _name(obj), error)
                continue
            marked += 1
    logger.info("marked %d RealtimeApp(s) as unattended (Ready=Unknown, OperatorStopped)", marked)
    return marked


def _name(obj: dict[str, Any]) -> str:
    metadata = obj["metadata"]
    return f"{metadata['namespace']}/{metadata['name']}"
