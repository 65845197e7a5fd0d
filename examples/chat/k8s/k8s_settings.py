"""Settings of the chat example in a cluster: ``chat.settings`` plus what several worker pods need.

Every worker pod, and every thread in it, must see the same users, sessions, rooms and messages:
a login made through one pod is read by another, and the channel session of a socket (who it is,
which rooms it joined) is written by whichever pod handled its last frame. So the database is
PostgreSQL, shared by all pods (``postgres.yaml`` beside this file runs one), and sessions are
database sessions: the page's login session and the sockets' channel sessions alike (channel
sessions cannot be signed cookies, there is no cookie to keep them in).

The database comes from the environment (``postgres.yaml``'s Secret ``chat-database`` holds these
keys; the RealtimeApp passes it with ``django.envFrom``):

=====================  ===========  ==============================================
variable               default      meaning
=====================  ===========  ==============================================
``DATABASE_HOST``      (required)   host name of the PostgreSQL server
``DATABASE_PORT``      ``5432``     its port
``DATABASE_NAME``      ``chat``     database
``DATABASE_USER``      ``chat``     user
``DATABASE_PASSWORD``  ``""``       password
=====================  ===========  ==============================================

The tables and the demo users are made once per image, before the app's pods run it, by the
operator's migration Job (``realtimeapp.yaml``'s ``django.migrate``: ``manage.py
wait_for_database``, ``migrate``, ``seed_demo``), not by each pod.
"""

import os

from chat.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ["DATABASE_HOST"],
        "PORT": os.environ.get("DATABASE_PORT", "5432"),
        "NAME": os.environ.get("DATABASE_NAME", "chat"),
        "USER": os.environ.get("DATABASE_USER", "chat"),
        "PASSWORD": os.environ.get("DATABASE_PASSWORD", ""),
        # A connection per worker thread, kept between messages and checked before reuse, so a
        # restarted database costs one failed message per thread, not a stuck thread.
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
