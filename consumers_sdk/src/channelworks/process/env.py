"""Reading a process's settings from its environment, the same way in every Channelworks process
(interface, worker, operator, the layer's own variables): an unset or empty variable means the
default; a wrong value raises :class:`~channelworks.exceptions.ConfigurationError` naming the
variable, what is allowed and what was given. Each process calls these once, in ``main()``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

from channelworks.exceptions import ConfigurationError

Default = TypeVar("Default")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default


def number(
    env: Mapping[str, str],
    name: str,
    default: Default,
    minimum: float = 0.0,
    maximum: float = math.inf,
) -> float | Default:
    """A finite number from ``minimum`` to ``maximum`` (seconds, sizes...)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or not minimum <= value <= maximum:
        allowed = f"at least {minimum:g}"
        if maximum != math.inf:
            allowed = f"a number from {minimum:g} to {maximum:g}"
        raise ConfigurationError(f"{name} must be {allowed}, got {raw!r}")
    return value


def integer(
    env: Mapping[str, str],
    name: str,
    default: Default,
    minimum: int = 0,
    maximum: int | None = None,
) -> int | Default:
    """A whole number from ``minimum`` to ``maximum`` (counts, sizes, ports...)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    whole = "a whole number" if maximum is None else f"a whole number from {minimum} to {maximum}"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be {whole}, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f"at least {minimum}" if maximum is None else whole
        raise ConfigurationError(f"{name} must be {allowed}, got {raw!r}")
    return value


def port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if raw and not (raw.isdigit() and int(raw) <= 65535):
        raise ConfigurationError(f"{name} must be a TCP port (0-65535), got {raw!r}")
    return int(raw) if raw else default


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def choice(env: Mapping[str, str], name: str, default: str, allowed: Sequence[str]) -> str:
    value = text(env, name, default).lower()
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped: ``a, b,,c`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
