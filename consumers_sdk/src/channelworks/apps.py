"""The ``channelworks`` Django app: add it to ``INSTALLED_APPS`` (before
``django.contrib.staticfiles``) and ``manage.py runserver`` serves WebSockets as well as HTTP,
running Channelworks' interface server and workers in its process (see docs/dev-mode.md)."""

from __future__ import annotations

from django.apps import AppConfig


class ChannelworksConfig(AppConfig):  # type: ignore[misc]
    name = "channelworks"
    label = "channelworks"
    verbose_name = "Channelworks"
