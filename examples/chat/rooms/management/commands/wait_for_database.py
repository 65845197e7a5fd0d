"""``manage.py wait_for_database``: wait until the default database accepts connections.

A step for whatever starts before its database does: the chat's migration Job in a cluster
(``django.migrate.command`` of examples/chat/k8s/realtimeapp.yaml) runs it before ``migrate``,
so a database pod that is still starting costs a few seconds of waiting rather than a failed
Job pod and its back-off.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, connection


class Command(BaseCommand):
    help = "Wait until the default database accepts connections (or fail after --timeout)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = time.monotonic() + options["timeout"]
        while True:
            try:
                connection.ensure_connection()
            except OperationalError as error:
                if time.monotonic() > deadline:
                    raise CommandError(f"the database did not answer: {error}") from error
                self.stderr.write(f"waiting for the database: {str(error).strip()}")
                connection.close()
                time.sleep(1)
                continue
            self.stdout.write("the database answers")
            return
