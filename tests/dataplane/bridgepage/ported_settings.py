"""Settings as a Channels 1 project had them: an ``asgi_redis`` layer on ``$REDIS_URL`` with no
prefix (``$LAYER_PREFIX`` adds one), shared by every process of the project."""

import os

from tests.dataplane.bridgepage.settings import *  # noqa: F403

_CONFIG: dict[str, object] = {"hosts": [os.environ.get("REDIS_URL", "redis://localhost:6379")]}
if os.environ.get("LAYER_PREFIX"):
    _CONFIG["prefix"] = os.environ["LAYER_PREFIX"]
CHANNEL_LAYERS = {"default": {"BACKEND": "asgi_redis.RedisChannelLayer", "CONFIG": _CONFIG}}
