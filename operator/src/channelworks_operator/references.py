"""What an app refers to but the operator does not make: Secrets, ConfigMaps, pull secrets.

The schema cannot know whether they exist; these checks turn a missing one into a ``Problem``
(a status reason and message) instead of pods that fail one by one. Also here: the generated
Redis password, made once and then always read back, and the generated Django SECRET_KEY, made
once. Blocking calls (run in a thread).
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from typing import Any

from channelworks_operator import spec
from channelworks_operator.builders import django as django_builders
from channelworks_operator.builders import meta
from channelworks_operator.builders import redis as redis_builders
from channelworks_operator.exceptions import ApiError
from channelworks_operator.kube import Api
from channelworks_operator.status import Problem

logger = logging.getLogger(__name__)

SECRET_NOT_FOUND = "SecretNotFound"
SECRET_KEY_NOT_FOUND = "SecretKeyNotFound"
CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"
IMAGE_PULL_SECRET_NOT_FOUND = "ImagePullSecretNotFound"
PASSWORD_BYTES = 32
SECRET_KEY_BYTES = 48


def _secret_value(secret: dict[str, Any], key: str) -> str | None:
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def check(kube: Api, app: spec.App) -> list[Problem]:
    """Every missing object the app refers to, in the order a person would fix them."""
    problems: list[Problem] = []
    namespace = app.ref.namespace
    seen_secrets: dict[str, dict[str, Any] | None] = {}

    def secret(name: str) -> dict[str, Any] | None:
        if name not in seen_secrets:
            seen_secrets[name] = kube.get("v1", "Secret", namespace, name)
        return seen_secrets[name]

    named = (
        (app.channel_layer.redis.password_ref, "spec.channelLayer.redis.passwordSecretRef"),
        (app.django_secret_key, "spec.django.secretKeySecretRef"),
    )
    for ref, field in named:
        if ref is None:
            continue
        found = secret(ref.name)
        if found is None:
            problems.append(
                Problem(
                    SECRET_NOT_FOUND,
                    f"Secret {ref.name} ({field}) does not exist in namespace {namespace}",
                )
            )
        elif _secret_value(found, ref.key) is None:
            problems.append(
                Problem(
                    SECRET_KEY_NOT_FOUND, f"Secret {ref.name} has no key {ref.key!r} ({field}.key)"
                )
            )
    for name in app.image_pull_secrets:
        if secret(name) is None:
            problems.append(
                Problem(
                    IMAGE_PULL_SECRET_NOT_FOUND,
                    f"image pull Secret {name} (spec.imagePullSecrets) does not exist in "
                    f"namespace {namespace}",
                )
            )
    for index, source in enumerate(app.django_env_from):
        for field, kind, reason in (
            ("secretRef", "Secret", SECRET_NOT_FOUND),
            ("configMapRef", "ConfigMap", CONFIG_MAP_NOT_FOUND),
        ):
            target = source.get(field)
            if not isinstance(target, dict) or target.get("optional"):
                continue
            name = str(target.get("name", ""))
            found_obj = secret(name) if kind == "Secret" else kube.get("v1", kind, namespace, name)
            if found_obj is None:
                problems.append(
                    Problem(
                        reason,
                        f"{kind} {name} (spec.django.envFrom[{index}].{field}) does not exist "
                        f"in namespace {namespace}",
                    )
                )
    return problems


def redis_password(kube: Api, app: spec.App) -> tuple[str | None, bool]:
    """The password of the app's Redis, and whether the operator owns (and must apply) it.

    The operator's own Secret is generated the first time and created at once (not applied
    with the other children), so a password is never generated twice: later calls read it back.
    """
    ref = redis_builders.password_secret_ref(app)
    if ref is None:
        return None, False
    namespace = app.ref.namespace
    if not redis_builders.owns_password_secret(app):
        found = kube.get("v1", "Secret", namespace, ref.name)
        return (_secret_value(found, ref.key) if found is not None else None), False
    existing = kube.get("v1", "Secret", namespace, ref.name)
    if existing is not None:
        value = _secret_value(existing, ref.key)
        if value:
            return value, True
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    manifest = redis_builders.password_secret(app, password)
    if existing is None:
        try:
            kube.create(manifest)
            logger.info(
                "[%s/%s] created Secret %s with a new Redis password",
                app.ref.namespace,
                app.ref.name,
                meta.redis_name(app.ref),
            )
        except ApiError as error:
            if not error.conflict:
                raise
            # Made meanwhile (another reconcile): read it back instead of overwriting it.
            return redis_password(kube, app)
    return password, True


def django_secret_key(kube: Api, app: spec.App) -> None:
    """Make the Secret ``<app>-secret-key`` with a random ``DJANGO_SECRET_KEY`` if the operator
    owns it and it does not exist; never rewritten (sessions and signatures stay valid)."""
    if not django_builders.owns_secret_key(app):
        return
    name = django_builders.secret_key_name(app.ref)
    if kube.get("v1", "Secret", app.ref.namespace, name) is not None:
        return
    key = secrets.token_urlsafe(SECRET_KEY_BYTES)
    try:
        kube.create(django_builders.secret_key_secret(app, key))
    except ApiError as error:
        if not error.conflict:
            raise
        return  # made meanwhile by another reconcile
    logger.info("[%s/%s] created Secret %s with a new DJANGO_SECRET_KEY", app.ref.namespace,
                app.ref.name, name)  # fmt: skip
