"""Django settings of the project the hardening tests run in real worker processes."""

SECRET_KEY = "channelworks-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
CHANNELWORKS = {"ROUTING": "tests.worker.hardening_app.routing.channel_routing"}
