"""One test per rule the builders keep: names, labels, owner references, hardening, the image
contract (commands, env, probes, ports, grace), and what each mode of the spec makes."""

from __future__ import annotations

import base64
from typing import Any

import kubernetes_validate
import pytest

from channelworks_operator import builders, spec
from channelworks_operator.builders import meta
from tests.operator import samples

DESIGN_LABELS = {
    "app.kubernetes.io/name": "channelworks",
    "app.kubernetes.io/instance": "chat",
    "app.kubernetes.io/managed-by": "channelworks-operator",
}


def build(fields: dict[str, Any] | None = None, **ctx: Any) -> dict[str, dict[str, Any]]:
    app = spec.parse(samples.app_body(spec_fields=fields))
    return samples.by_kind(builders.desired(app, samples.context(**ctx)))


def pod_specs(children: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        key: child["spec"]["template"]["spec"]
        for key, child in children.items()
        if child["kind"] in ("Deployment", "StatefulSet")
    }


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_names_follow_the_design() -> None:
    children = build()
    assert {
        "Deployment/chat-interface",
        "Service/chat-interface",
        "Deployment/chat-worker",
        "StatefulSet/chat-redis",
        "Service/chat-redis",
        "ConfigMap/chat-redis",
        "Secret/chat-redis",
        "NetworkPolicy/chat-redis",
        "PodDisruptionBudget/chat-interface",
        "PodDisruptionBudget/chat-worker",
        "PodDisruptionBudget/chat-redis",
    } <= set(children)


def test_every_child_has_the_design_labels_and_the_app_as_controller() -> None:
    components = {"interface", "worker", "channel-layer", "monitoring"}
    for key, child in build().items():
        labels = child["metadata"]["labels"]
        assert DESIGN_LABELS.items() <= labels.items(), key
        assert labels["app.kubernetes.io/component"] in components, key
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "channelworks.dev/v1alpha1",
            "kind": "RealtimeApp",
            "name": "chat",
            "uid": samples.UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }, key
        assert child["metadata"]["namespace"] == "demo"


def test_pods_are_hardened() -> None:
    for key, pod in pod_specs(build()).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, key
        assert pod["securityContext"]["runAsUser"] > 0, key
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, key
        assert pod["automountServiceAccountToken"] is False, key
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, key
            assert security["allowPrivilegeEscalation"] is False, key
            assert security["capabilities"] == {"drop": ["ALL"]}, key


def test_interface_follows_the_image_contract() -> None:
    children = build({"interface": {"terminationGracePeriodSeconds": 45}})
    pod = children["Deployment/chat-interface"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["channelworks-interface"]
    assert container["image"] == "channelworks/interface:0.1.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "metrics": 9100}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    env = env_of(container)
    assert env["CHANNELWORKS_APP"] == "demo.chat"
    assert env["CHANNELWORKS_REDIS_MODE"] == "cluster"
    assert env["CHANNELWORKS_REDIS_URL"] == "redis://chat-redis.demo.svc:6379"
    assert env["CHANNELWORKS_REDIS_PASSWORD"] == {
        "secretKeyRef": {"name": "chat-redis", "key": "password"}
    }
    assert env["PORT"] == "8000"
    assert pod["terminationGracePeriodSeconds"] == 45
    assert env["CHANNELWORKS_INTERFACE_GRACE_PERIOD"] == "45"
    assert "DJANGO_SETTINGS_MODULE" not in env


def test_worker_follows_the_image_contract() -> None:
    children = build({"worker": {"concurrency": 32, "terminationGracePeriodSeconds": 90}})
    pod = children["Deployment/chat-worker"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["channelworks-worker"]
    assert container["image"] == "registry.example/chat-worker:1.4"
    env = env_of(container)
    assert env["DJANGO_SETTINGS_MODULE"] == "chat.settings"
    assert env["CHANNELWORKS_WORKER_CONCURRENCY"] == "32"
    assert env["CHANNELWORKS_APP"] == "demo.chat"
    assert pod["terminationGracePeriodSeconds"] == 90
    assert int(env["CHANNELWORKS_DRAIN_SECONDS"]) < 90  # drained before SIGKILL
    assert [p["containerPort"] for p in container["ports"]] == [9100]


def test_a_user_variable_replaces_the_operators_of_the_same_name() -> None:
    children = build({"interface": {"env": [{"name": "PORT", "value": "9000"}]}})
    (container,) = children["Deployment/chat-interface"]["spec"]["template"]["spec"]["containers"]
    names = [item["name"] for item in container["env"]]
    assert names.count("PORT") == 1
    assert env_of(container)["PORT"] == "9000"


def test_the_service_exposes_the_interface_port_and_the_status_names_it() -> None:
    children = build({"interface": {"port": 8080, "service": {"type": "NodePort"}}})
    service = children["Service/chat-interface"]["spec"]
    assert service["type"] == "NodePort"
    assert service["ports"][0]["port"] == 8080
    assert service["selector"]["app.kubernetes.io/component"] == "interface"
    assert meta.endpoint(spec.parse(samples.app_body()).ref, 8000) == "chat-interface.demo.svc:8000"


def test_cluster_mode_runs_shards_times_one_plus_replicas_nodes() -> None:
    children = build({"channelLayer": {"redis": {"shards": 4, "replicasPerShard": 2}}})
    redis_set = children["StatefulSet/chat-redis"]
    assert redis_set["spec"]["replicas"] == 12
    assert redis_set["spec"]["serviceName"] == "chat-redis"
    config = children["ConfigMap/chat-redis"]["data"]["redis.conf"]
    assert "cluster-enabled yes" in config
    assert children["Service/chat-redis"]["spec"]["clusterIP"] == "None"
    assert children["Service/chat-redis"]["spec"]["publishNotReadyAddresses"] is True
    assert children["PodDisruptionBudget/chat-redis"]["spec"]["maxUnavailable"] == 1


def test_the_redis_password_comes_from_the_secret_not_the_manifest() -> None:
    children = build(redis_password="s3cret")
    secret = children["Secret/chat-redis"]
    assert base64.b64decode(secret["data"]["password"]).decode() == "s3cret"
    redis_set = children["StatefulSet/chat-redis"]
    text = repr(redis_set) + repr(children["ConfigMap/chat-redis"])
    assert "s3cret" not in text
    (container,) = redis_set["spec"]["template"]["spec"]["containers"]
    assert "$(REDIS_PASSWORD)" in container["args"]


def test_pvcs_follow_the_retention_setting() -> None:
    fields = {"channelLayer": {"redis": {"storage": {"size": "5Gi", "whenDeleted": "Retain"}}}}
    redis_set = build(fields)["StatefulSet/chat-redis"]["spec"]
    assert redis_set["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    (claim,) = redis_set["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_ephemeral_storage_makes_no_claims() -> None:
    fields = {"channelLayer": {"redis": {"mode": "standalone", "storage": {"ephemeral": True}}}}
    children = build(fields)
    redis_set = children["StatefulSet/chat-redis"]["spec"]
    assert redis_set["replicas"] == 1
    assert "volumeClaimTemplates" not in redis_set
    assert "PodDisruptionBudget/chat-redis" not in children
    assert "cluster-enabled" not in children["ConfigMap/chat-redis"]["data"]["redis.conf"]


def test_external_mode_makes_no_redis_and_uses_the_users_secret() -> None:
    fields = {
        "channelLayer": {
            "redis": {
                "mode": "external",
                "url": "redis://redis.shared:6379/0",
                "passwordSecretRef": {"name": "shared"},
            }
        }
    }
    children = build(fields, redis_password=None)
    assert not [key for key in children if "redis" in key]
    (container,) = children["Deployment/chat-worker"]["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["CHANNELWORKS_REDIS_MODE"] == "external"
    assert env["CHANNELWORKS_REDIS_URL"] == "redis://redis.shared:6379/0"
    assert env["CHANNELWORKS_REDIS_PASSWORD"] == {
        "secretKeyRef": {"name": "shared", "key": "password"}
    }


def test_the_network_policy_admits_only_the_apps_pods_and_the_operator() -> None:
    policy = build()["NetworkPolicy/chat-redis"]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "channel-layer"
    own, operator = policy["ingress"]
    assert own["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "channelworks",
                    "app.kubernetes.io/instance": "chat",
                }
            }
        }
    ]
    (peer,) = operator["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "channelworks-system"
    }
    assert build({"networkPolicy": {"enabled": False}}).get("NetworkPolicy/chat-redis") is None


def test_builtin_autoscaling_writes_replicas_and_external_scalers_leave_them() -> None:
    assert build(worker_replicas=7)["Deployment/chat-worker"]["spec"]["replicas"] == 7
    hpa_fields = {"worker": {"autoscaling": {"mode": "hpa", "minReplicas": 2}}}
    children = build(hpa_fields, worker_replicas=None)
    assert "replicas" not in children["Deployment/chat-worker"]["spec"]
    hpa = children["HorizontalPodAutoscaler/chat-worker"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "chat-worker",
    }
    assert hpa["minReplicas"] == 2
    assert hpa["metrics"][0]["external"]["metric"]["selector"]["matchLabels"] == {
        "app": "demo.chat"
    }


def test_keda_mode_makes_a_scaled_object_only_when_keda_is_installed() -> None:
    fields = {
        "worker": {
            "autoscaling": {"mode": "keda", "prometheus": {"serverAddress": "http://prom:9090"}}
        }
    }
    scaled = build(fields, worker_replicas=None)["ScaledObject/chat-worker"]["spec"]
    trigger, age = scaled["triggers"]
    assert trigger["metadata"]["query"] == 'sum(channelworks_layer_queue_depth{app="demo.chat"})'
    assert trigger["metadata"]["threshold"] == "100"
    query = 'max(channelworks_layer_oldest_message_age_seconds{app="demo.chat"})'
    assert (age["metadata"]["query"], age["metadata"]["threshold"]) == (query, "10")
    assert "ScaledObject/chat-worker" not in build(fields, keda_available=False)


def test_monitors_are_made_only_when_the_prometheus_operator_serves_them() -> None:
    assert "PodMonitor/chat" in build()
    assert "PodMonitor/chat" not in build(monitor_kinds=frozenset())
    service_monitor = build({"monitoring": {"kind": "ServiceMonitor"}})
    assert "ServiceMonitor/chat" in service_monitor
    assert "Service/chat-metrics" in service_monitor
    assert "PodMonitor/chat" not in build({"monitoring": {"enabled": False}})


@pytest.mark.parametrize(
    "fields",
    [
        None,
        {"channelLayer": {"redis": {"mode": "standalone"}}},
        {"worker": {"autoscaling": {"mode": "hpa"}}, "monitoring": {"kind": "ServiceMonitor"}},
        {"interface": {"autoscaling": {"enabled": True, "mode": "hpa", "metricName": "conns"}}},
    ],
)
def test_built_in_kinds_pass_the_kubernetes_schema(fields: dict[str, Any] | None) -> None:
    for child in build(fields).values():
        if child["apiVersion"].startswith(("monitoring.coreos.com", "keda.sh")):
            continue
        kubernetes_validate.validate(child, "1.33", strict=True)
