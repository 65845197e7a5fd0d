"""The workers' Django gets a SECRET_KEY of the app's own and ALLOWED_HOSTS that match the names
clients use: built without a cluster, then on the real API server (the generated Secret made once
and kept, an Ingress's host added, a named Secret that is missing reported)."""

from __future__ import annotations

import base64
from typing import Any

from channelworks_operator import builders, spec
from channelworks_operator.builders import django, meta, migrate
from channelworks_operator.kube import Kube
from tests.operator import apps, samples
from tests.operator.conftest import OperatorFactory
from tests.support.eventually import eventually

HOSTS = [
    "chat-interface",
    "chat-interface.demo",
    "chat-interface.demo.svc",
    "chat-interface.demo.svc.cluster.local",
]


def worker_container(fields: dict[str, Any], **context: Any) -> dict[str, Any]:
    parsed = spec.parse(samples.app_body(spec_fields=fields))
    found = samples.by_kind(builders.desired(parsed, samples.context(**context)))
    container: dict[str, Any] = found["Deployment/chat-worker"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container["env"]}


def test_the_generated_key_comes_first_so_a_key_of_the_users_wins() -> None:
    container = worker_container(
        {"django": {"envFrom": [{"secretRef": {"name": "chat-database"}}]}}
    )
    assert container["envFrom"] == [
        {"secretRef": {"name": "chat-secret-key"}},  # first: later sources win
        {"secretRef": {"name": "chat-database"}},
    ]
    assert "DJANGO_SECRET_KEY" not in env_of(container)  # env would beat every envFrom
    assert env_of(container)["DJANGO_ALLOWED_HOSTS"]["value"] == ",".join(HOSTS)


def test_a_named_secret_is_used_and_none_is_generated() -> None:
    ref = {"name": "chat-django", "key": "SECRET_KEY"}
    container = worker_container({"django": {"secretKeySecretRef": ref}})
    assert "envFrom" not in container
    assert env_of(container)["DJANGO_SECRET_KEY"] == {
        "name": "DJANGO_SECRET_KEY",
        "valueFrom": {"secretKeyRef": ref},
    }


def test_the_users_allowed_hosts_replace_ours_and_ingress_hosts_are_added() -> None:
    mine = {"name": "DJANGO_ALLOWED_HOSTS", "value": "chat.example.com"}
    assert env_of(worker_container({"django": {"env": [mine]}}))["DJANGO_ALLOWED_HOSTS"] == mine
    container = worker_container({}, ingress_hosts=("chat.example.com", ".example.org"))
    value = env_of(container)["DJANGO_ALLOWED_HOSTS"]["value"]
    assert value.split(",") == [*HOSTS, ".example.org", "chat.example.com"]


def test_ingress_hosts_are_those_routing_to_the_interface() -> None:
    app = spec.parse(samples.app_body()).ref

    def ingress(host: str, service: str) -> dict[str, Any]:
        backend = {"service": {"name": service, "port": {"number": 8000}}}
        path = {"path": "/", "pathType": "Prefix", "backend": backend}
        return {"spec": {"rules": [{"host": host, "http": {"paths": [path]}}]}}

    found = django.ingress_hosts(
        app,
        [
            ingress("chat.example.com", "chat-interface"),
            ingress("*.chat.example.org", "chat-interface"),
            ingress("other.example.com", "other-interface"),
            {"spec": {"defaultBackend": {"service": {"name": "chat-interface"}}}},  # no host
        ],
    )
    assert found == [".chat.example.org", "chat.example.com"]


def test_the_migration_job_gets_the_same_key_and_hosts() -> None:
    parsed = spec.parse(samples.app_body())
    worker = samples.by_kind(builders.desired(parsed, samples.context()))["Deployment/chat-worker"]
    container = migrate.job(parsed, worker)["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "chat-secret-key"}}]
    assert env_of(container)["DJANGO_ALLOWED_HOSTS"]["value"] == ",".join(HOSTS)


def _key(kube: Kube, namespace: str) -> tuple[str, str]:
    secret = kube.get("v1", "Secret", namespace, "chat-secret-key")
    assert secret is not None
    value = base64.b64decode(secret["data"]["DJANGO_SECRET_KEY"]).decode()
    return value, secret["metadata"]["resourceVersion"]


def test_on_the_api_server_the_key_is_made_once_and_ingress_hosts_reach_the_workers(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    app = apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url)))
    apps.wait_condition(kube, namespace, "Ready", "True")
    secret = kube.get("v1", "Secret", namespace, "chat-secret-key")
    assert secret is not None
    apps.owned_by_the_app(secret, app)
    key, version = _key(kube, namespace)
    assert len(key) >= 50

    kube.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "chat", "namespace": namespace},
            "spec": {
                "rules": [
                    {
                        "host": "chat.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {
                                            "name": meta.interface_name(
                                                spec.AppRef("chat", namespace, "", 0)
                                            ),
                                            "port": {"number": 8000},
                                        }
                                    },
                                }
                            ]
                        },
                    }
                ]
            },
        }
    )

    def hosts() -> list[str]:
        worker = kube.get("apps/v1", "Deployment", namespace, "chat-worker")
        assert worker is not None
        env = env_of(worker["spec"]["template"]["spec"]["containers"][0])
        found: list[str] = env["DJANGO_ALLOWED_HOSTS"]["value"].split(",")
        assert "chat.example.com" in found, found
        return found

    found = eventually(hosts, timeout=apps.WAIT, interval=0.5, message="the Ingress's host")
    assert found[0] == "chat-interface"
    assert _key(kube, namespace) == (key, version)  # never rewritten


def test_a_named_secret_that_is_missing_is_reported(
    kube: Kube, namespace: str, operators: OperatorFactory, redis_url: str
) -> None:
    operators()
    named = {"django": {"secretKeySecretRef": {"name": "chat-django"}}}
    apps.apply(kube, apps.manifest(namespace, **apps.external(redis_url, **named)))
    blocked = apps.wait_condition(kube, namespace, "Ready", "False", reason="SecretNotFound")
    message = apps.condition(blocked, "Ready")["message"]
    assert "chat-django (spec.django.secretKeySecretRef)" in message, message
    assert kube.get("v1", "Secret", namespace, "chat-secret-key") is None
