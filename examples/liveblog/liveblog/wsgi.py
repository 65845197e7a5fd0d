"""WSGI entry point: the project's HTTP side can stay on a WSGI server (gunicorn, uWSGI) while
Channelworks serves the WebSockets; a post saved here still reaches every watching page."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "liveblog.settings")

application = get_wsgi_application()
