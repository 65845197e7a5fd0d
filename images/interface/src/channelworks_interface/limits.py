"""The checks the interface makes itself, and the codes it answers with (docs/interface.md)."""

from __future__ import annotations

import enum
import urllib.parse
from collections.abc import Iterable

Headers = Iterable[tuple[bytes, bytes]]
# An event daphne_glue puts on a socket's queue when its client breaks a per-socket limit
# ({"type": LIMIT_EVENT, "reason": "rate_limited" | "slow_reader"}); the bridge closes it 1008.
LIMIT_EVENT = "channelworks.limit"
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_WEB_SCHEMES = ("http", "https")  # what a browser page's Origin carries
_SECURE = ("https", "wss")


class CloseCode(enum.IntEnum):
    """WebSocket close codes the interface sends on its own (RFC 6455 and the IANA registry)."""

    NORMAL = 1000
    POLICY_VIOLATION = 1008  # over the message rate, or not reading what it is sent
    MESSAGE_TOO_BIG = 1009  # a frame or message over CHANNELWORKS_INTERFACE_MAX_MESSAGE_BYTES
    INTERNAL_ERROR = 1011  # the layer failed, or a worker's reply could not be understood
    SERVICE_RESTART = 1012  # this process is draining (SIGTERM): reconnect, to another one
    TRY_AGAIN_LATER = 1013  # no worker answered in time, or the worker channel is full


def header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def _host_and_port(netloc: str, scheme: str | None) -> tuple[str, int | None]:
    parsed = urllib.parse.urlsplit(f"//{netloc}")
    try:
        port = parsed.port
    except ValueError:
        return "", None
    if port is None and scheme is not None:
        port = _DEFAULT_PORTS.get(scheme)
    return (parsed.hostname or "").lower(), port


def _matches(pattern: str, scheme: str, host: str, port: int | None) -> bool:
    """Channels' origin patterns: ``*``, ``[scheme://]host[:port]``, ``.domain`` for subdomains."""
    if pattern == "*":
        return True
    want_scheme: str | None = None
    if "://" in pattern:
        want_scheme, _, pattern = pattern.partition("://")
        if want_scheme != scheme:
            return False
    want_host, want_port = _host_and_port(pattern, want_scheme)
    if want_port is not None and want_port != port:
        return False
    if pattern.startswith("."):
        domain = pattern[1:].split(":", 1)[0]
        return host == domain or host.endswith("." + domain)
    return host == want_host


def origin_allowed(
    headers: Headers,
    allowed: tuple[str, ...],
    *,
    require_origin: bool,
    trust_forwarded_host: bool,
) -> bool:
    """Whether a WebSocket upgrade's ``Origin`` may connect.

    With no ``allowed`` patterns, only the page's own host may (the ``Origin`` names the host the
    request went to: ``Host``, or ``X-Forwarded-Host`` behind a trusted proxy). A request without
    ``Origin`` does not come from a browser page; it is let in unless ``require_origin``.
    """
    headers = list(headers)
    raw_origin = header(headers, b"origin")
    if raw_origin is None:
        return not require_origin
    try:
        origin = urllib.parse.urlsplit(raw_origin.decode("latin-1").strip().lower())
        origin_port = origin.port
    except ValueError:
        return False
    scheme = origin.scheme
    host = (origin.hostname or "").lower()
    if not host:  # "null" origins (sandboxed frames, file://) only match "*"
        return "*" in allowed
    port = origin_port if origin_port is not None else _DEFAULT_PORTS.get(scheme)
    if allowed:
        return any(_matches(pattern, scheme, host, port) for pattern in allowed)
    return _same_origin(headers, scheme, host, port, trust_forwarded_host)


def _same_origin(
    headers: list[tuple[bytes, bytes]], scheme: str, host: str, port: int | None, behind: bool
) -> bool:
    """The default rule: the page's origin is the one the request was sent to. Same host; same
    port (a Host without one means the default port of the page's scheme, so
    ``http://host:8080`` is not ``host``); a web page's scheme, and, where a trusted proxy says
    how the client connected (``X-Forwarded-Proto``), the matching one (``https`` for ``wss``)."""
    if scheme not in _WEB_SCHEMES:
        return False
    if behind:
        proto = header(headers, b"x-forwarded-proto")
        if proto is not None:
            secure = proto.decode("latin-1").split(",", 1)[0].strip().lower() in _SECURE
            if secure != (scheme == "https"):
                return False
    target = header(headers, b"x-forwarded-host") if behind else None
    target = target or header(headers, b"host")
    if target is None:
        return False
    first_target = target.decode("latin-1").split(",", 1)[0].strip()
    target_host, target_port = _host_and_port(first_target, scheme)
    return target_host == host and target_port == port


def websocket_scheme(headers: Headers, trust_proxy: bool) -> str:
    """``ws`` or ``wss``; ``X-Forwarded-Proto: https`` counts only behind a trusted proxy."""
    if trust_proxy:
        proto = header(headers, b"x-forwarded-proto")
        if proto is not None:
            value = proto.decode("latin-1").split(",", 1)[0].strip().lower()
            return "wss" if value in _SECURE else "ws"
    return "ws"
