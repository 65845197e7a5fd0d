"""Django settings of the SDK's test project (sqlite, sessions, auth, CSRF, staticfiles)."""

import os
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "channelworks-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "tests.sdk.project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "tests.sdk.project.liveblog",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tests.sdk.project.views.StampMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHANNELWORKS_TEST_DB")
        or os.path.join(tempfile.gettempdir(), "channelworks-sdk-tests.sqlite3"),
        "TEST": {"NAME": os.environ.get("CHANNELWORKS_TEST_DB")},
    }
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_REDIRECT_URL = "/me/"

STATIC_URL = "/static/"
STATICFILES_DIRS = [HERE / "static"]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channelworks.layers.InMemoryChannelLayer",
        # Where a Channels 1 project names its routing (tests/sdk checks this place too).
        "ROUTING": "tests.sdk.project.routing.channel_routing",
    }
}
# Channelworks' own place for it. It wins, and other test folders that replace CHANNEL_LAYERS
# in this process (Channels 4 compatibility tests) do not take the routing away.
CHANNELWORKS = {"ROUTING": "tests.sdk.project.routing.channel_routing"}
