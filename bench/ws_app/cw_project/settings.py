"""Django settings of the Channelworks side: no database, no middleware, only the routing.

The worker builds its layer from its environment (``CHANNELWORKS_REDIS_URL`` ...), so no
``CHANNEL_LAYERS`` entry is needed here.
"""

SECRET_KEY = "channelworks-bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
CHANNELWORKS = {"ROUTING": "ws_app.cw_project.routing.channel_routing"}
LOGGING_CONFIG = None
