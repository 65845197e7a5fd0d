"""Settings of the chat example in a cluster: ``chat.settings`` plus what several worker pods with
a read-only root filesystem need.

- The sqlite database lives in ``$CHANNELWORKS_STATE_DIR`` (``/tmp/chat``, the pod's writable
  emptyDir). Each worker pod starts from a copy of the database the image was built with
  (migrated, with the demo users and rooms), so every pod knows alice, bob and the rooms.
- Sessions are signed cookies rather than database rows: a login handled by one worker pod is
  valid on every other, since they share nothing but the channel layer.

Messages a pod stores stay in that pod's copy: room history is per pod. That is a demo's
shortcut; a real project points ``DATABASES`` at a database server.
"""

import os
import shutil
from pathlib import Path

os.environ.setdefault("CHANNELWORKS_STATE_DIR", "/tmp/chat")

from chat.settings import *  # noqa: F403
from chat.settings import DATABASES, STATE_DIR

SEED_DATABASE = Path(os.environ.get("CHAT_SEED_DATABASE", "/app/seed/chat.sqlite3"))
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

_database = Path(DATABASES["default"]["NAME"])
if not _database.exists() and SEED_DATABASE.exists():
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SEED_DATABASE, _database)
