"""Django settings of the ordinary Channels 4 side, served by Daphne.

The channel layer comes from the environment bench/ws.py sets:
``BENCH_REDIS_URL``, ``BENCH_LAYER`` (``core``: channels_redis.core.RedisChannelLayer, the
default Channels 4 setup; ``pubsub``: channels_redis.pubsub.RedisPubSubChannelLayer) and
``BENCH_PREFIX``.
"""

import os

SECRET_KEY = "channels4-bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["daphne", "channels"]
DATABASES: dict[str, dict[str, str]] = {}
ASGI_APPLICATION = "ws_app.c4_project.asgi.application"
LOGGING_CONFIG = None

_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
_PREFIX = os.environ.get("BENCH_PREFIX", "asgi")
# redis-py 8's default socket_timeout (5 s) equals channels_redis' BZPOPMIN timeout (5 s), so an
# idle core receive() can die with "Timeout reading from ..." (bench/layer.py found it too);
# give it room, as a production setup would have to.
_HOSTS = [{"address": _URL, "socket_timeout": 30}]
# channels_redis' capacity per channel (its default 100), set by bench/delivery.py.
_CAPACITY = int(os.environ.get("BENCH_CAPACITY", "100"))

if os.environ.get("BENCH_LAYER", "core") == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": _HOSTS, "prefix": _PREFIX, "capacity": _CAPACITY},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": _HOSTS, "prefix": _PREFIX, "capacity": _CAPACITY},
        }
    }
