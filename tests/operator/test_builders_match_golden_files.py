"""Every manifest the builders make, compared with a reviewed copy in tests/operator/golden/.

After an intended change, regenerate the files and review the diff:

    CHANNELWORKS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest \
        tests/operator/test_builders_match_golden_files.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from channelworks_operator import builders, spec
from tests.operator import samples

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CHANNELWORKS_UPDATE_GOLDEN") == "1"

SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # The design example: a sharded Redis Cluster and the built-in autoscaler.
    "cluster-builtin": (
        {
            "interface": {"replicas": 2},
            "worker": {
                "concurrency": 16,
                "autoscaling": {"minReplicas": 1, "maxReplicas": 20, "targetQueueDepth": 100},
            },
            "channelLayer": {
                "redis": {
                    "mode": "cluster",
                    "shards": 3,
                    "replicasPerShard": 1,
                    "storage": {"size": "1Gi"},
                },
                "capacity": 1000,
            },
        },
        {"worker_replicas": 3},
    ),
    # One Redis in an emptyDir, an HPA, a ServiceMonitor, pull secrets and user settings.
    "standalone-hpa": (
        {
            "imagePullPolicy": "IfNotPresent",
            "imagePullSecrets": [{"name": "registry-credentials"}],
            "serviceAccountName": "chat",
            "django": {
                "env": [
                    {
                        "name": "SENTRY_DSN",
                        "valueFrom": {"secretKeyRef": {"name": "sentry", "key": "dsn"}},
                    }
                ],
                "envFrom": [{"configMapRef": {"name": "chat-settings"}}],
            },
            "interface": {
                "replicas": 3,
                "port": 8080,
                "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}},
                "env": [
                    {
                        "name": "CHANNELWORKS_INTERFACE_ALLOWED_ORIGINS",
                        "value": "https://chat.example",
                    }
                ],
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                "nodeSelector": {"pool": "edge"},
                "autoscaling": {
                    "enabled": True,
                    "mode": "hpa",
                    "targetCPUPercent": 60,
                    "metricName": "channelworks_operator_interface_connections",
                },
            },
            "worker": {
                "autoscaling": {"mode": "hpa", "minReplicas": 2, "maxReplicas": 8},
                "tolerations": [
                    {
                        "key": "dedicated",
                        "operator": "Equal",
                        "value": "workers",
                        "effect": "NoSchedule",
                    }
                ],
            },
            "channelLayer": {"redis": {"mode": "standalone", "storage": {"ephemeral": True}}},
            "networkPolicy": {"enabled": False},
            "monitoring": {"kind": "ServiceMonitor", "labels": {"release": "prometheus"}},
        },
        {"worker_replicas": None},
    ),
    # A Redis Cluster the user runs, KEDA reading Prometheus, no Prometheus Operator.
    "external-keda": (
        {
            "interface": {
                "autoscaling": {
                    "enabled": True,
                    "mode": "keda",
                    "maxReplicas": 6,
                    "prometheus": {"serverAddress": "http://prometheus.monitoring.svc:9090"},
                }
            },
            "worker": {
                "autoscaling": {
                    "mode": "keda",
                    "minReplicas": 0,
                    "maxReplicas": 30,
                    "prometheus": {"serverAddress": "http://prometheus.monitoring.svc:9090"},
                },
            },
            "channelLayer": {
                "redis": {
                    "mode": "external",
                    "url": "rediss+cluster://redis.shared.svc:6380",
                    "passwordSecretRef": {"name": "shared-redis", "key": "secret"},
                },
            },
        },
        {"worker_replicas": None, "monitor_kinds": frozenset(), "redis_password": None},
    ),
}


def render(name: str) -> str:
    fields, overrides = SCENARIOS[name]
    app = spec.parse(samples.app_body(spec_fields=fields))
    manifests = builders.desired(app, samples.context(**overrides))
    return yaml.safe_dump_all(manifests, sort_keys=True, default_flow_style=False)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_manifests_match_the_golden_file(name: str) -> None:
    path = GOLDEN / f"{name}.yaml"
    rendered = render(name)
    if UPDATE:
        path.write_text(rendered)
    assert path.exists(), f"{path} is missing: run with CHANNELWORKS_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(), (
        f"the builders' output for {name!r} differs from {path.name}; if intended, regenerate "
        "with CHANNELWORKS_UPDATE_GOLDEN=1 and review the diff"
    )


def test_golden_files_have_no_strays() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(SCENARIOS)
