"""The operator's own settings (env and flags) and its RBAC file."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from channelworks_operator import config, metrics, rbac
from channelworks_operator.exceptions import ConfigurationError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_watch_everything_with_leader_election() -> None:
    loaded = config.load({"POD_NAMESPACE": "cw", "POD_NAME": "op-1"})
    assert loaded.clusterwide
    assert loaded.leader_election
    assert (loaded.leader_election_namespace, loaded.identity) == ("cw", "op-1")
    assert (loaded.metrics_port, loaded.health_port) == (8080, 8081)


def test_env_and_flags_set_namespaces_ports_and_leader_election() -> None:
    env = {
        "CHANNELWORKS_OPERATOR_NAMESPACES": "a, b,a",
        "CHANNELWORKS_OPERATOR_METRICS_PORT": "9000",
        "CHANNELWORKS_OPERATOR_LEADER_ELECTION": "false",
    }
    loaded = config.load(env, ["--health-port", "9001", "--leader-election-name", "x"])
    assert loaded.namespaces == ("a", "b")
    assert (loaded.metrics_port, loaded.health_port) == (9000, 9001)
    assert loaded.leader_election is False
    assert loaded.leader_election_name == "x"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"CHANNELWORKS_OPERATOR_METRICS_PORT": "http"}, "must be a TCP port"),
        ({"CHANNELWORKS_OPERATOR_LEADER_ELECTION": "maybe"}, "true or false"),
        (
            {
                "CHANNELWORKS_OPERATOR_LEASE_DURATION_SECONDS": "5",
                "CHANNELWORKS_OPERATOR_RENEW_DEADLINE_SECONDS": "6",
            },
            "RENEW_DEADLINE",
        ),
        ({"CHANNELWORKS_OPERATOR_POD_LABELS": "nolabel"}, "key=value"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        config.load(env)


def test_the_rbac_file_is_rendered_from_the_rules() -> None:
    assert (REPO / "operator" / "rbac.yaml").read_text() == rbac.render(), (
        "operator/rbac.yaml is stale: python -m channelworks_operator.rbac > operator/rbac.yaml"
    )


def test_rbac_grants_no_wildcards() -> None:
    for rule in rbac.cluster_rules() + rbac.leader_election_rules():
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]


def test_metrics_are_named_as_the_design_says() -> None:
    registry = CollectorRegistry()
    m = metrics.Metrics(registry)
    m.reconcile_total.labels(result="success").inc()
    m.desired_replicas.labels(app="demo.chat").set(4)
    assert (
        registry.get_sample_value("channelworks_operator_reconcile_total", {"result": "success"})
        == 1
    )
    assert (
        registry.get_sample_value(
            "channelworks_operator_autoscaler_desired_replicas", {"app": "demo.chat"}
        )
        == 4
    )
    names = {metric.name for metric in registry.collect()}
    assert {"channelworks_operator_reconcile_duration_seconds", "channelworks_build_info"} <= names
    m.forget_app("demo.chat")
    assert (
        registry.get_sample_value(
            "channelworks_operator_autoscaler_desired_replicas", {"app": "demo.chat"}
        )
        is None
    )
