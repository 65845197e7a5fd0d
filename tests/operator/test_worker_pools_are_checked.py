"""``spec.workerPools`` that would strand or double-take work are refused: by the CRD's CEL rules
at the real API server where a rule can say it, and by the operator's parser (a condition with
the reason) for everything; pools inherit what they leave out from ``spec.worker``."""

from __future__ import annotations

from typing import Any

import pytest

from channelworks_operator import spec
from channelworks_operator.exceptions import ApiError, InvalidSpec
from channelworks_operator.kube import Kube
from tests.operator import apps, crd, samples

HTTP = {"name": "http", "channels": ["http.request"]}
REST = {"name": "sockets"}

REFUSED: dict[str, tuple[list[dict[str, Any]], str, str]] = {
    # case: (pools, what the API server says, what the parser says)
    "overlap": (
        [HTTP, {"name": "web", "channels": ["http.request", "x"]}, REST],
        "a channel is listed in two pools",
        "overlapping pools: channel 'http.request' is in pools 'http' and 'web'",
    ),
    "two-catch-alls": (
        [HTTP, REST, {"name": "more"}],
        "exactly one pool must list no channels",
        "overlapping pools: 'sockets' and 'more' both take every channel",
    ),
    "uncovered": (
        [HTTP, {"name": "ws", "channels": ["websocket.receive"]}],
        "exactly one pool must list no channels",
        "uncovered channels: every pool lists channels",
    ),
    "duplicate-name": (  # a list keyed by name: server-side apply refuses the patch itself
        [HTTP, {"name": "http"}],
        'duplicate entries for key [name="http"]',
        "two pools are named 'http'",
    ),
    "exclude-with-channels": (
        [{**HTTP, "exclude": ["y"]}, REST],
        "a pool's exclude applies only to the pool without channels",
        "applies only to a pool without channels",
    ),
    "hpa-pool-to-zero": (
        [{**HTTP, "autoscaling": {"mode": "hpa", "minReplicas": 0}}, REST],
        "a pool's autoscaling.mode hpa cannot scale to zero",
        "spec.workerPools[0].autoscaling.minReplicas: mode hpa cannot scale to zero",
    ),
    "keda-pool-without-prometheus": (
        [{**HTTP, "autoscaling": {"mode": "keda"}}, REST],
        "a pool in autoscaling mode keda needs prometheus.serverAddress",
        "spec.workerPools[0].autoscaling.prometheus.serverAddress: mode keda needs it",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_api_server_refuses_pools_that_strand_or_double_take(
    case: str, kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    pools, message, _ = REFUSED[case]
    with pytest.raises(ApiError) as raised:
        apps.apply(kube, apps.manifest(namespace, workerPools=pools))
    assert raised.value.status == (500 if case == "duplicate-name" else 422), raised.value
    assert message in raised.value.message


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_parser_refuses_the_same_pools_with_the_reason(case: str) -> None:
    pools, _, message = REFUSED[case]
    with pytest.raises(InvalidSpec) as raised:
        spec.parse(samples.app_body(spec_fields={"workerPools": pools}))
    assert message in str(raised.value)


def test_an_excluded_channel_no_pool_takes_is_refused_as_uncovered() -> None:
    pools = [HTTP, {"name": "sockets", "exclude": ["http.request", "chat.slow"]}]
    with pytest.raises(InvalidSpec) as raised:
        spec.parse(samples.app_body(spec_fields={"workerPools": pools}))
    assert "uncovered channels: chat.slow excluded from pool 'sockets'" in str(raised.value)
    assert raised.value.field == "spec.workerPools[1].exclude"


def test_pools_inherit_spec_worker_and_the_catch_all_leaves_out_the_others(
    kube: Kube, namespace: str, crd_installed: dict[str, Any]
) -> None:
    fields = {
        "worker": {"concurrency": 8, "autoscaling": {"maxReplicas": 6, "targetQueueDepth": 50}},
        "workerPools": [
            {**HTTP, "concurrency": 32, "autoscaling": {"maxReplicas": 3}, "image": "web:2"},
            {"name": "sockets", "settingsModule": "chat.ws_settings"},
        ],
    }
    stored = apps.apply(kube, apps.manifest(namespace, **fields))  # the API server takes it
    app = spec.parse(crd.apply_defaults(stored, crd.schema()))
    http, sockets = app.pools
    assert (http.name, http.channels, http.exclude, http.image) == (
        "http",
        ("http.request",),
        (),
        "web:2",
    )
    assert http.worker.concurrency == 32
    assert http.worker.autoscaling.max_replicas == 3
    assert http.worker.autoscaling.target_queue_depth == 50  # from spec.worker
    assert (sockets.channels, sockets.exclude) == ((), ("http.request",))
    assert sockets.settings_module == "chat.ws_settings"
    assert sockets.worker.concurrency == 8
    assert sockets.worker.autoscaling.max_replicas == 6
    assert sockets.takes("websocket.receive") and not sockets.takes("http.request")
    assert http.takes("http.request") and not http.takes("websocket.receive")


def test_an_app_without_pools_has_one_default_pool_of_spec_worker() -> None:
    app = spec.parse(samples.app_body())
    (pool,) = app.pools
    assert (pool.name, pool.channels, pool.exclude) == (None, (), ())
    assert pool.worker == app.worker
