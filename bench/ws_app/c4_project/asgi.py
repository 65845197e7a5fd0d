"""ASGI entry point for Daphne: ``daphne ws_app.c4_project.asgi:application``."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ws_app.c4_project.settings")

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from ws_app.c4_project.consumers import BroadcastConsumer, EchoConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("echo/", EchoConsumer.as_asgi()),
                path("broadcast/<slug:group>/", BroadcastConsumer.as_asgi()),
            ]
        ),
    }
)
