"""The interface server's settings: read once, in ``main()``, from the environment and flags.

Every knob is an environment variable (the operator sets them on the Deployment); the few that a
person starting the server by hand changes most (address, ports) also have a flag. See
docs/interface.md for what each one does.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from channelworks.exceptions import ConfigurationError
from channelworks.layers import env as layer_env
from channelworks.process import env as readers

LOG_FORMATS = ("json", "text")
DEFAULT_MAX_MESSAGE_BYTES = 960 * 1024  # leaves room under the layer's 1 MiB message limit
GRACE_MARGIN_SECONDS = 2.0  # stop at least this long before the pod's grace period ends
LAST_WORDS_SECONDS = 1.0  # before stopping: time to answer what is left (503s, close frames)
DEFAULT_MAX_CONNECTIONS = 10_000  # open TCP connections (HTTP and WebSocket) per process
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024  # queued for one client behind a full socket buffer


@dataclass(frozen=True)
class InterfaceConfig:
    """Everything the interface server needs to know; see docs/interface.md for each field."""

    # Channel layer (the image contract shared with the worker).
    layer: layer_env.LayerSettings = field(default_factory=layer_env.LayerSettings)
    # Listening.
    host: str = "0.0.0.0"
    port: int = 8000
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9100
    # Waiting for workers.
    connect_timeout: float = 10.0
    http_timeout: float = 30.0
    http_stream_timeout: float = 60.0
    # Limits.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_body_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    allowed_origins: tuple[str, ...] = ()
    require_origin: bool = False
    proxy_headers: bool = False
    # Protections (docs/interface.md, "Limits and the answers they get").
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 75.0
    message_rate: float = 50.0
    message_burst: int = 20
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    write_timeout: float = 30.0
    # WebSocket upkeep.
    ping_interval: float = 20.0
    ping_timeout: float = 30.0
    websocket_max_age: float = 86400.0
    # Recovery after reconnect (recovery.py): how long a dropped socket's session waits for its
    # client to come back; 0 turns resuming off.
    resume_seconds: float = 30.0
    # Draining on SIGTERM.
    drain_delay: float = 2.0
    drain_window: float = 10.0
    grace_period: float = 30.0
    # Logs.
    log_level: str = "INFO"
    log_format: str = "json"
    access_log: bool = False

    @property
    def exit_deadline(self) -> float:
        """Seconds after SIGTERM by which the server stops, whatever is still open."""
        return self.grace_period - GRACE_MARGIN_SECONDS


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(origin.lower() for origin in readers.names(env, name))


def _parse_flags(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="channelworks-interface",
        description="Channelworks interface server: Daphne forwarding HTTP and WebSocket events "
        "onto the channel layer. Every setting is an environment variable (see "
        "docs/interface.md); these flags override the most common ones.",
    )
    parser.add_argument(
        "--host", help="address to serve HTTP/WebSocket on (CHANNELWORKS_INTERFACE_HOST)"
    )
    parser.add_argument("--port", type=int, help="HTTP/WebSocket port (PORT)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="port of /metrics, /healthz, /readyz (CHANNELWORKS_METRICS_PORT)",
    )
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="CHANNELWORKS_LOG_FORMAT")
    return parser.parse_args(list(argv))


def load(env: Mapping[str, str], argv: Sequence[str] = ()) -> InterfaceConfig:
    """Build the configuration from ``env`` (and ``argv`` flags); raise on any bad value."""
    flags = _parse_flags(argv)
    overrides = {
        "CHANNELWORKS_INTERFACE_HOST": flags.host,
        "PORT": None if flags.port is None else str(flags.port),
        "CHANNELWORKS_METRICS_PORT": (
            None if flags.metrics_port is None else str(flags.metrics_port)
        ),
        "CHANNELWORKS_LOG_FORMAT": flags.log_format,
    }
    env = {**env, **{name: value for name, value in overrides.items() if value is not None}}
    layer = layer_env.settings_from_env(env)
    if layer.mode != "memory" and not env.get("CHANNELWORKS_APP", "").strip():
        raise ConfigurationError(
            f"CHANNELWORKS_REDIS_MODE={layer.mode} needs CHANNELWORKS_APP (the key prefix that "
            "keeps this application's keys apart from others on the same Redis)"
        )
    config = InterfaceConfig(
        layer=layer,
        host=readers.text(env, "CHANNELWORKS_INTERFACE_HOST", "0.0.0.0"),
        port=readers.port(env, "PORT", 8000),
        metrics_host=readers.text(env, "CHANNELWORKS_METRICS_HOST", "0.0.0.0"),
        metrics_port=readers.port(env, "CHANNELWORKS_METRICS_PORT", 9100),
        connect_timeout=readers.number(env, "CHANNELWORKS_INTERFACE_CONNECT_TIMEOUT", 10.0, 0.001),
        http_timeout=readers.number(env, "CHANNELWORKS_INTERFACE_HTTP_TIMEOUT", 30.0, 0.001),
        http_stream_timeout=readers.number(
            env, "CHANNELWORKS_INTERFACE_HTTP_STREAM_TIMEOUT", 60.0, 0.001
        ),
        max_message_bytes=readers.integer(
            env, "CHANNELWORKS_INTERFACE_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, minimum=1
        ),
        max_body_bytes=readers.integer(
            env, "CHANNELWORKS_INTERFACE_MAX_BODY_BYTES", DEFAULT_MAX_MESSAGE_BYTES, minimum=0
        ),
        allowed_origins=_origins(env, "CHANNELWORKS_INTERFACE_ALLOWED_ORIGINS"),
        require_origin=readers.flag(env, "CHANNELWORKS_INTERFACE_REQUIRE_ORIGIN", False),
        proxy_headers=readers.flag(env, "CHANNELWORKS_INTERFACE_PROXY_HEADERS", False),
        max_connections=readers.integer(
            env, "CHANNELWORKS_INTERFACE_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, minimum=1
        ),
        header_timeout=readers.number(env, "CHANNELWORKS_INTERFACE_HEADER_TIMEOUT", 10.0, 0.001),
        body_timeout=readers.number(env, "CHANNELWORKS_INTERFACE_BODY_TIMEOUT", 30.0, 0.001),
        idle_timeout=readers.number(env, "CHANNELWORKS_INTERFACE_IDLE_TIMEOUT", 75.0, 0.001),
        message_rate=readers.number(env, "CHANNELWORKS_INTERFACE_MESSAGE_RATE", 50.0),
        message_burst=readers.integer(env, "CHANNELWORKS_INTERFACE_MESSAGE_BURST", 20, minimum=1),
        max_output_bytes=readers.integer(
            env, "CHANNELWORKS_INTERFACE_MAX_OUTPUT_BYTES", DEFAULT_MAX_OUTPUT_BYTES, minimum=1
        ),
        write_timeout=readers.number(env, "CHANNELWORKS_INTERFACE_WRITE_TIMEOUT", 30.0, 0.001),
        resume_seconds=readers.number(env, "CHANNELWORKS_INTERFACE_RESUME_SECONDS", 30.0),
        ping_interval=readers.number(env, "CHANNELWORKS_INTERFACE_PING_INTERVAL", 20.0, 0.1),
        ping_timeout=readers.number(env, "CHANNELWORKS_INTERFACE_PING_TIMEOUT", 30.0, 0.1),
        websocket_max_age=readers.number(env, "CHANNELWORKS_INTERFACE_WEBSOCKET_MAX_AGE", 86400.0),
        drain_delay=readers.number(env, "CHANNELWORKS_INTERFACE_DRAIN_DELAY", 2.0),
        drain_window=readers.number(env, "CHANNELWORKS_INTERFACE_DRAIN_WINDOW", 10.0),
        grace_period=readers.number(env, "CHANNELWORKS_INTERFACE_GRACE_PERIOD", 30.0, 4.0),
        log_level=readers.choice(
            env, "CHANNELWORKS_LOG_LEVEL", "info", ("debug", "info", "warning", "error")
        ).upper(),
        log_format=readers.choice(env, "CHANNELWORKS_LOG_FORMAT", "json", LOG_FORMATS),
        access_log=readers.flag(env, "CHANNELWORKS_INTERFACE_ACCESS_LOG", False),
    )
    latest = config.exit_deadline - LAST_WORDS_SECONDS
    if config.drain_delay + config.drain_window > latest:
        raise ConfigurationError(
            "CHANNELWORKS_INTERFACE_DRAIN_DELAY + CHANNELWORKS_INTERFACE_DRAIN_WINDOW "
            f"({config.drain_delay:g}s + {config.drain_window:g}s) must be at most "
            f"CHANNELWORKS_INTERFACE_GRACE_PERIOD minus "
            f"{GRACE_MARGIN_SECONDS + LAST_WORDS_SECONDS:g}s ({latest:g}s), so every socket is "
            "closed before the process has to stop"
        )
    return config
