"""What ``channelworks dev`` runs: one frozen :class:`DevConfig`, made once from the command line.

The supervisor hands the same config to every process it starts (as JSON on their command line),
so the interface server, the workers and the layer always agree.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from channelworks.exceptions import ConfigurationError
from channelworks.layers import env as layer_env

LAYERS = ("memory", "local", "redis")
_SETTINGS_IN_MANAGE_PY = re.compile(
    r"""DJANGO_SETTINGS_MODULE["']\s*,\s*["'](?P<module>[A-Za-z_][\w.]*)["']"""
)
_APP_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class DevConfig:
    """Everything one ``channelworks dev`` run is configured with."""

    project_dir: str
    settings_module: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    concurrency: int = 16
    layer: str = "memory"  # memory | local | redis
    redis_url: str = ""
    app: str = "channelworks"
    reload: bool = True
    log_level: str = "INFO"

    @property
    def url(self) -> str:
        """Where a browser reaches the server."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    @property
    def one_process(self) -> bool:
        """The in-memory layer only reaches its own process: interface and workers share it."""
        return self.layer == "memory"

    def layer_settings(self) -> layer_env.LayerSettings:
        """The image contract's layer settings for this run (what the processes build on)."""
        if self.layer == "redis":
            scheme = urllib.parse.urlsplit(self.redis_url).scheme
            mode = "cluster" if scheme.endswith("+cluster") else "standalone"
            return layer_env.LayerSettings(app=self.app, mode=mode, url=self.redis_url)
        return layer_env.LayerSettings(app=self.app, mode=self.layer)

    def environment(self) -> dict[str, str]:
        """The image contract's variables for this run: the processes get them, so a project's
        settings (and ``manage.py`` commands run with them) can name the same layer."""
        settings = self.layer_settings()
        variables = {
            "DJANGO_SETTINGS_MODULE": self.settings_module,
            "CHANNELWORKS_APP": settings.app,
            "CHANNELWORKS_REDIS_MODE": settings.mode,
        }
        if settings.url:
            variables["CHANNELWORKS_REDIS_URL"] = settings.url
        return variables

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DevConfig:
        return cls(**json.loads(text))


def settings_from_manage_py(project_dir: Path) -> str | None:
    """The settings module a project's ``manage.py`` sets as its default, if it names one."""
    manage = project_dir / "manage.py"
    try:
        source = manage.read_text(encoding="utf-8")
    except OSError:
        return None
    found = _SETTINGS_IN_MANAGE_PY.search(source)
    return found.group("module") if found else None


def find_settings(project_dir: Path, given: str | None, env: Mapping[str, str]) -> str:
    """``--settings``, else ``DJANGO_SETTINGS_MODULE``, else the default of ``manage.py``."""
    module = given or env.get("DJANGO_SETTINGS_MODULE", "").strip() or None
    module = module or settings_from_manage_py(project_dir)
    if not module:
        raise ConfigurationError(
            f"no Django settings found for {project_dir}: pass --settings MODULE, set "
            "DJANGO_SETTINGS_MODULE, or run in the folder of the project's manage.py"
        )
    return module


def default_app(settings_module: str, env: Mapping[str, str]) -> str:
    """The layer prefix: ``CHANNELWORKS_APP``, else the project's package name (``chat``)."""
    given = env.get("CHANNELWORKS_APP", "").strip()
    if given:
        return given
    name = _APP_NAME.sub("-", settings_module.split(".")[0]).strip("-")
    return name or "channelworks"


def build(
    *,
    project: str | None,
    settings: str | None,
    host: str,
    port: int,
    workers: int,
    concurrency: int,
    layer: str | None,
    redis_url: str | None,
    app: str | None,
    reload: bool,
    log_level: str,
    env: Mapping[str, str],
) -> DevConfig:
    """Check the options and make the run's config; raise ``ConfigurationError`` naming the
    option that is wrong and what it allows."""
    project_dir = Path(project or os.getcwd()).expanduser().resolve()
    if not project_dir.is_dir():
        raise ConfigurationError(f"--project {project_dir}: no such folder")
    settings_module = find_settings(project_dir, settings, env)
    if redis_url and layer not in (None, "redis"):
        raise ConfigurationError(f"--redis and --layer {layer} exclude each other")
    chosen = "redis" if redis_url else (layer or "memory")
    if chosen not in LAYERS:
        raise ConfigurationError(f"--layer must be one of {', '.join(LAYERS)}, got {chosen!r}")
    if chosen == "redis" and not redis_url:
        raise ConfigurationError("--layer redis needs --redis URL (e.g. redis://127.0.0.1:6379/0)")
    if redis_url and urllib.parse.urlsplit(redis_url).scheme not in (
        "redis",
        "rediss",
        "unix",
        "redis+cluster",
        "rediss+cluster",
    ):
        raise ConfigurationError(
            f"--redis {redis_url!r} is not a redis://, rediss://, unix:// or redis+cluster:// URL"
        )
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"--port must be a TCP port (1-65535), got {port}")
    if workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {workers}")
    if concurrency < 1:
        raise ConfigurationError(f"--concurrency must be at least 1, got {concurrency}")
    return DevConfig(
        project_dir=str(project_dir),
        settings_module=settings_module,
        host=host,
        port=port,
        workers=workers,
        concurrency=concurrency,
        layer=chosen,
        redis_url=redis_url or "",
        app=app or default_app(settings_module, env),
        reload=reload,
        log_level=log_level.upper(),
    )
