"""The worker's settings, read once from the environment in ``main()``, and the layer they name.

- ``CHANNELWORKS_APP`` (required): the application's key prefix in the layer (``<ns>.<name>``).
- ``CHANNELWORKS_REDIS_MODE`` (``standalone`` when a URL is set; without a URL, ``memory`` or
  ``local`` must be named): ``memory``, ``local``, ``standalone``, ``cluster`` or ``external``
  (read by ``channelworks.layers.env.settings_from_env``, as in every process).
- ``CHANNELWORKS_REDIS_URL`` (required for the Redis modes): ``redis://host:6379/0``.
- ``CHANNELWORKS_REDIS_PASSWORD``: put into the URL unless it carries a password of its own.
- ``DJANGO_SETTINGS_MODULE`` (required): the project's settings, where the routing is named.
- ``CHANNELWORKS_ROUTING``: dotted path of the routing list, overriding the settings.
- ``CHANNELWORKS_WORKER_CONCURRENCY`` (``16``): messages handled at once (thread pool size).
- ``CHANNELWORKS_WORKER_CHANNELS`` / ``CHANNELWORKS_WORKER_EXCLUDE_CHANNELS``: comma-separated
  channels to take only / not to take (default: every routed channel).
- ``CHANNELWORKS_DRAIN_SECONDS`` (``25``): on SIGTERM, how long in-flight messages may take.
- ``CHANNELWORKS_WORKER_MAX_DELIVERIES`` (``3``): hand-outs of one message (workers that died
  holding it) before it goes to the dead-letter channel instead of being run again.
- ``CHANNELWORKS_WORKER_DEAD_LETTER_CHANNEL`` (``channelworks.dead_letters``): where given-up
  messages go.
- ``CHANNELWORKS_WORKER_TIME_LIMIT_SECONDS`` (``60``): how long one message may run before it is
  given up (dead-lettered, its connection answered) and its thread reported as stuck.
- ``CHANNELWORKS_WORKER_TIME_LIMITS``: per-channel time limits overriding the one above,
  ``http.request=30,websocket.receive=10``.
- ``CHANNELWORKS_WORKER_HTTP_RETRY_METHODS`` (``GET,HEAD,OPTIONS``): the HTTP methods run again
  by another worker when the worker running them died; any other request gets a 502 instead.
- ``CHANNELWORKS_METRICS_HOST`` / ``CHANNELWORKS_METRICS_PORT`` (``0.0.0.0`` / ``9100``):
  where ``/metrics``, ``/healthz`` and ``/readyz`` are served.
- ``CHANNELWORKS_LOG_FORMAT`` (``json``, or ``text``) and ``CHANNELWORKS_LOG_LEVEL`` (``INFO``).
- ``CHANNELWORKS_REDIS_CONNECT_TIMEOUT`` (``1``), ``CHANNELWORKS_REDIS_KEEPALIVE_SECONDS`` (``1``),
  ``CHANNELWORKS_READINESS_GRACE_SECONDS`` (``15``): see ``channelworks.layers.env.LayerTuning``.
- ``CHANNELWORKS_LAYER_CAPACITY`` / ``CHANNELWORKS_LAYER_EXPIRY``: the layer's channel capacity
  and message expiry (layer defaults otherwise).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from channelworks import exceptions
from channelworks.layers import env as layer_env
from channelworks.process import env as readers
from channelworks_worker import safeguards

CHANNEL_NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,99}$")
HTTP_METHOD = re.compile(r"^[A-Z]{1,20}$")
LOG_FORMATS = ("json", "text")


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the worker process is configured with; see the module docstring."""

    layer: layer_env.LayerSettings
    settings_module: str | None = None
    routing: str | None = None
    concurrency: int = 16
    only_channels: tuple[str, ...] = ()
    exclude_channels: tuple[str, ...] = ()
    drain_seconds: float = 25.0
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9100
    log_format: str = "json"
    log_level: str = "INFO"
    max_deliveries: int = 3
    dead_letter_channel: str = safeguards.DEFAULT_DEAD_LETTER_CHANNEL
    time_limit_seconds: float = 60.0
    http_retry_methods: tuple[str, ...] = safeguards.DEFAULT_RETRY_METHODS
    channel_time_limits: tuple[tuple[str, float], ...] = ()

    @property
    def protections(self) -> safeguards.Safeguards:
        """The limits the worker applies to each message (see safeguards)."""
        return safeguards.Safeguards(
            max_deliveries=self.max_deliveries,
            dead_letter_channel=self.dead_letter_channel,
            time_limit=self.time_limit_seconds,
            retry_methods=self.http_retry_methods,
            channel_time_limits=self.channel_time_limits,
        )


def _time_limits(env: Mapping[str, str], name: str) -> tuple[tuple[str, float], ...]:
    limits = []
    for part in readers.names(env, name):
        channel, _, raw = part.partition("=")
        channel = channel.strip()
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if not CHANNEL_NAME.match(channel) or seconds <= 0:
            raise exceptions.ConfigurationError(
                f"{name} takes channel=seconds pairs (seconds above 0), got {part!r}"
            )
        limits.append((channel, seconds))
    return tuple(limits)


def from_env(env: Mapping[str, str]) -> WorkerConfig:
    """Read and check the worker's environment; raise ``ConfigurationError`` naming the problem."""
    app = env.get("CHANNELWORKS_APP", "").strip()
    if not app:
        raise exceptions.ConfigurationError(
            "CHANNELWORKS_APP is required: the application's layer prefix, e.g. 'demo.chat'"
        )
    if (
        not env.get("CHANNELWORKS_REDIS_MODE", "").strip()
        and not env.get("CHANNELWORKS_REDIS_URL", "").strip()
    ):
        # A worker alone on the in-memory layer would take nothing: say what it needs instead.
        raise exceptions.ConfigurationError(
            "CHANNELWORKS_REDIS_URL is required (or CHANNELWORKS_REDIS_MODE=memory or local)"
        )
    layer = layer_env.settings_from_env(env)
    settings_module = env.get("DJANGO_SETTINGS_MODULE", "").strip() or None
    routing = env.get("CHANNELWORKS_ROUTING", "").strip() or None
    if settings_module is None and routing is None:
        raise exceptions.ConfigurationError(
            "DJANGO_SETTINGS_MODULE is required (the worker finds the routing in the settings)"
        )
    log_format = env.get("CHANNELWORKS_LOG_FORMAT", "json").strip().lower() or "json"
    if log_format not in LOG_FORMATS:
        raise exceptions.ConfigurationError(
            f"CHANNELWORKS_LOG_FORMAT must be json or text, got {log_format!r}"
        )
    log_level = env.get("CHANNELWORKS_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if not isinstance(logging.getLevelName(log_level), int):
        raise exceptions.ConfigurationError(f"CHANNELWORKS_LOG_LEVEL {log_level!r} is not a level")
    dead_letter_channel = (
        env.get("CHANNELWORKS_WORKER_DEAD_LETTER_CHANNEL", "").strip()
        or safeguards.DEFAULT_DEAD_LETTER_CHANNEL
    )
    if not CHANNEL_NAME.match(dead_letter_channel):
        raise exceptions.ConfigurationError(
            "CHANNELWORKS_WORKER_DEAD_LETTER_CHANNEL must be a normal channel name (letters, "
            f"digits, '-', '_', '.'; under 100 characters), got {dead_letter_channel!r}"
        )
    retry_methods = tuple(
        name.upper() for name in readers.names(env, "CHANNELWORKS_WORKER_HTTP_RETRY_METHODS")
    )
    if "CHANNELWORKS_WORKER_HTTP_RETRY_METHODS" not in env:
        retry_methods = safeguards.DEFAULT_RETRY_METHODS
    for method in retry_methods:
        if not HTTP_METHOD.match(method):
            raise exceptions.ConfigurationError(
                f"CHANNELWORKS_WORKER_HTTP_RETRY_METHODS: {method!r} is not an HTTP method"
            )
    return WorkerConfig(
        layer=layer,
        settings_module=settings_module,
        routing=routing,
        concurrency=readers.integer(env, "CHANNELWORKS_WORKER_CONCURRENCY", 16, minimum=1),
        only_channels=readers.names(env, "CHANNELWORKS_WORKER_CHANNELS"),
        exclude_channels=readers.names(env, "CHANNELWORKS_WORKER_EXCLUDE_CHANNELS"),
        drain_seconds=readers.number(env, "CHANNELWORKS_DRAIN_SECONDS", 25.0, 0),
        metrics_host=env.get("CHANNELWORKS_METRICS_HOST", "0.0.0.0").strip() or "0.0.0.0",
        metrics_port=readers.port(env, "CHANNELWORKS_METRICS_PORT", 9100),
        log_format=log_format,
        log_level=log_level,
        max_deliveries=readers.integer(env, "CHANNELWORKS_WORKER_MAX_DELIVERIES", 3, minimum=1),
        dead_letter_channel=dead_letter_channel,
        time_limit_seconds=readers.number(
            env, "CHANNELWORKS_WORKER_TIME_LIMIT_SECONDS", 60.0, 0.001
        ),
        http_retry_methods=retry_methods,
        channel_time_limits=_time_limits(env, "CHANNELWORKS_WORKER_TIME_LIMITS"),
    )
