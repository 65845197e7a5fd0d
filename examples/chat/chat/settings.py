"""Settings of the chat example: a plain Django project, plus the routing and a channel layer.

Run it with ``channelworks dev`` (or ``python manage.py runserver``); see docs/examples.md.
State (the sqlite database) goes to ``$CHANNELWORKS_STATE_DIR``, else ``examples/chat/.state``.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("CHANNELWORKS_STATE_DIR") or BASE_DIR / ".state")
STATE_DIR.mkdir(parents=True, exist_ok=True)  # sqlite needs its folder before `migrate`

DEBUG = os.environ.get("DJANGO_DEBUG", "true").lower() in ("1", "true", "yes")
# A fixed key only for debugging on a laptop: with it, anyone who read this file could forge
# session cookies (log in as anyone). Without DEBUG the key must come from the environment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set: with DJANGO_DEBUG off the chat example needs a secret "
            "key of its own (for example DJANGO_SECRET_KEY=$(openssl rand -hex 32)); only with "
            "DJANGO_DEBUG=true does it fall back to a fixed development key"
        )
    SECRET_KEY = "chat-example-not-a-secret"
ALLOWED_HOSTS = [
    "localhost",
    "127.0.0.1",
    "[::1]",
    *filter(None, os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")),
]

INSTALLED_APPS = [
    "channelworks",  # first: its `runserver` serves WebSockets too
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rooms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chat.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# One sqlite file shared by every worker process: WAL and a busy timeout let them write at once.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": STATE_DIR / "chat.sqlite3",
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"

# The channel layer other processes of the project use (manage.py commands, scripts). The
# processes `channelworks dev` starts install the layer it runs on; in production the image
# contract's variables name it (CHANNELWORKS_REDIS_MODE: memory, local, standalone, cluster).
_LAYER_MODE = os.environ.get("CHANNELWORKS_REDIS_MODE", "memory")
_LAYER_CONFIG: dict[str, object] = {"prefix": os.environ.get("CHANNELWORKS_APP", "chat")}
if _LAYER_MODE == "memory":
    _LAYER_BACKEND = "channelworks.layers.InMemoryChannelLayer"
elif _LAYER_MODE == "local":
    _LAYER_BACKEND = "channelworks.layers.LocalChannelLayer"
else:
    _LAYER_BACKEND = "channelworks.layers.RedisChannelLayer"
    _LAYER_CONFIG["hosts"] = [os.environ.get("CHANNELWORKS_REDIS_URL", "redis://127.0.0.1:6379/0")]
    _LAYER_CONFIG["cluster"] = True if _LAYER_MODE == "cluster" else None
CHANNEL_LAYERS = {"default": {"BACKEND": _LAYER_BACKEND, "CONFIG": _LAYER_CONFIG}}

CHANNELWORKS = {"ROUTING": "chat.routing.channel_routing"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"rooms": {"level": "INFO"}},
}
